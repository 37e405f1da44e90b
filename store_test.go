package main

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func TestMigrationsApplyOnceUnderConcurrentStarts(t *testing.T) {
	db, _ := newTestDB(t)
	var wg sync.WaitGroup
	results := make([]migration, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { results[i], errs[i] = migrate(context.Background(), db) })
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += len(results[i].applied)
	}
	files, _ := migrationFiles.ReadDir("migrations")
	if total != len(files) {
		t.Fatalf("applied %d migrations in all, want each of %d once: %v", total, len(files), results)
	}
	var rows int
	db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows)
	if rows != len(files) {
		t.Fatalf("schema_migrations has %d rows, want %d", rows, len(files))
	}
	again, err := migrate(context.Background(), db)
	if err != nil || len(again.applied) != 0 {
		t.Fatalf("second run applied %v (err %v)", again.applied, err)
	}
	if want := strings.TrimSuffix(files[len(files)-1].Name(), ".sql"); again.current != want {
		t.Fatalf("current schema version %q, want %q", again.current, want)
	}
}

func TestEnsureDatabaseCreatesIt(t *testing.T) {
	_, dsn := newTestDB(t) // a name we own, and drop afterwards
	admin := sqlOpenAdmin(t)
	// Drop ours, then let ensureDatabase bring it back.
	name := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if created, err := ensureDatabase(context.Background(), dsn); err != nil || created != name {
		t.Fatalf("first call: created %q, %v; want %q", created, err, name)
	}
	if created, err := ensureDatabase(context.Background(), dsn); err != nil || created != "" {
		t.Fatalf("second call: created %q, %v; want nothing", created, err)
	}
	var exists bool
	admin.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if !exists {
		t.Fatal("database not created")
	}
}

// The owner's newest-first page is served by an index, not a table scan.
func TestItemListUsesIndex(t *testing.T) {
	db, _ := migratedDB(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 100 owners with 200 items each, statistics up to date.
	for _, q := range []string{
		`INSERT INTO users (email, password_hash) SELECT 'u' || g || '@example.com', 'x' FROM generate_series(1, 100) g`,
		`INSERT INTO items (owner_id, title, created_at, updated_at)
		 SELECT u.id, 'item', now() - g * interval '1 minute', now() FROM users u, generate_series(1, 200) g`,
		`ANALYZE`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var owner string
	conn.QueryRowContext(ctx, `SELECT id FROM users LIMIT 1`).Scan(&owner)
	var plan strings.Builder
	rows, err := conn.QueryContext(ctx, `EXPLAIN `+ownItemsPageSQL, owner, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan.WriteString(line + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "items_owner_created_idx") || strings.Contains(plan.String(), "Sort") {
		t.Fatalf("owner page is not an ordered index scan:\n%s", plan.String())
	}
}
