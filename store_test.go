package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
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

// The item list's one statement runs one branch on its index, in order,
// and never the other: the owner's page on (owner_id, created_at), a
// superuser's on (created_at); no table scan, no sort. One item is one
// primary-key lookup.
func TestItemListUsesIndex(t *testing.T) {
	db, _ := migratedDB(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 100 owners with 200 items each, one of them a superuser, each with a
	// session and 50 older ones; statistics up to date.
	for _, q := range []string{
		`INSERT INTO users (email, password_hash, is_superuser) SELECT 'u' || g || '@example.com', 'x', g = 1 FROM generate_series(1, 100) g`,
		`INSERT INTO items (owner_id, title, created_at, updated_at)
		 SELECT u.id, 'item', now() - g * interval '1 minute', now() FROM users u, generate_series(1, 200) g`,
		`INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at)
		 SELECT convert_to(u.email, 'UTF8'), u.id, now(), now(), now() + interval '1 hour' FROM users u`,
		`INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at)
		 SELECT convert_to(u.email || '/' || g, 'UTF8'), u.id, now() - g * interval '1 second', now(), now() + interval '1 hour'
		 FROM users u, generate_series(1, 50) g`,
		`ANALYZE`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	explain := func(email, query string, args ...any) string {
		var plan strings.Builder
		now := time.Now()
		args = append([]any{[]byte(email), now, now.Add(-time.Hour)}, args...)
		rows, err := conn.QueryContext(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) `+sessionReadSQL(query), args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan.WriteString(line + "\n")
		}
		return plan.String()
	}
	for _, c := range []struct{ email, runs, skips string }{
		{"u2@example.com", "items_owner_created_idx", "items_created_idx"},
		{"u1@example.com", "items_created_idx", "items_owner_created_idx"},
	} {
		plan := explain(c.email, itemsPageSQL, 20, 0)
		ran := regexp.MustCompile(`Index Scan using ` + c.runs + ` on items.*\(actual rows=\d+`)
		skipped := regexp.MustCompile(`Index Scan using ` + c.skips + ` on items.*\(never executed\)`)
		if !ran.MatchString(plan) || !skipped.MatchString(plan) || strings.Contains(plan, "Sort") || strings.Contains(plan, "Seq Scan on items") {
			t.Fatalf("%s: want %s run and %s never executed, no sort or table scan:\n%s", c.email, c.runs, c.skips, plan)
		}
	}
	// One item by id: the primary key, for owner and superuser alike.
	var itemID string
	conn.QueryRowContext(ctx, `SELECT i.id FROM items i JOIN users u ON u.id = i.owner_id WHERE u.email = 'u2@example.com' LIMIT 1`).Scan(&itemID)
	for _, email := range []string{"u2@example.com", "u1@example.com"} {
		if plan := explain(email, itemSQL, itemID); !regexp.MustCompile(`Index Scan using items_pkey on items.*\(actual rows=1`).MatchString(plan) {
			t.Fatalf("%s: one item is not one primary-key lookup:\n%s", email, plan)
		}
	}
	// The sessions page: the user's own sessions on their index, in order.
	if plan := explain("u2@example.com", sessionsPageSQL, 20, 0); !regexp.MustCompile(`Index Scan using sessions_user_created_idx on sessions x.*\(actual rows=\d+`).MatchString(plan) ||
		strings.Contains(plan, "Sort") || strings.Contains(plan, "Seq Scan on sessions") {
		t.Fatalf("the sessions page is not one ordered index scan:\n%s", plan)
	}
}
