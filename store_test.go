package main

import (
	"context"
	"regexp"
	"strconv"
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

// Every list's plan is an index scan bounded by its page, from the
// position on, with no sort and no count over the collection: the first
// page, and one deep in it, of an owner with 20,000 items and of one with
// 20 (the owner's index), of a superuser (every item, by creation), of the
// users and of a user's sessions. One item is one primary-key lookup.
func TestListPlansAreBoundedByThePage(t *testing.T) {
	db, _ := migratedDB(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// u1 a superuser, u2 with 20,000 items, u3 to u100 with 20 each; each
	// with a session and 50 older ones; statistics and the visibility map
	// up to date, as autovacuum keeps them.
	for _, q := range []string{
		`INSERT INTO users (email, password_hash, is_superuser, created_at) SELECT 'u' || g || '@example.com', 'x', g = 1, now() - g * interval '1 minute' FROM generate_series(1, 100) g`,
		`INSERT INTO items (owner_id, title, created_at, updated_at)
		 SELECT u.id, 'item', now() - g * interval '1 second', now() FROM users u, generate_series(1, 20) g WHERE u.email <> 'u2@example.com'`,
		`INSERT INTO items (owner_id, title, created_at, updated_at)
		 SELECT u.id, 'item', now() - g * interval '1 second', now() FROM users u, generate_series(1, 20000) g WHERE u.email = 'u2@example.com'`,
		`INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at)
		 SELECT convert_to(u.email, 'UTF8'), u.id, now(), now(), now() + interval '1 hour' FROM users u`,
		`INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at)
		 SELECT convert_to(u.email || '/' || g, 'UTF8'), u.id, now() - g * interval '1 second', now(), now() + interval '1 hour'
		 FROM users u, generate_series(1, 50) g`,
		`INSERT INTO passkeys (user_id, credential_id, public_key, algorithm, user_verified, backup_eligible, backed_up, aaguid, name, created_at)
		 SELECT u.id, convert_to(u.email || '/' || g, 'UTF8'), '\x00', -7, true, true, true, gen_random_uuid(), 'key', now() - g * interval '1 second'
		 FROM users u, generate_series(1, 20) g`,
		`VACUUM ANALYZE`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	explain := func(query string, args ...any) string {
		var plan strings.Builder
		rows, err := conn.QueryContext(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) `+query, args...)
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
	asSession := func(email, count, read string, args ...any) string {
		now := time.Now()
		return explain(sessionReadSQL(count, read), append([]any{[]byte(email), now, now.Add(-time.Hour)}, args...)...)
	}
	// deep is a position 15,000 items into u2's list.
	var deep position
	conn.QueryRowContext(ctx, `SELECT i.created_at, i.id FROM items i JOIN users u ON u.id = i.owner_id WHERE u.email = 'u2@example.com'
		ORDER BY i.created_at DESC, i.id DESC OFFSET 15000 LIMIT 1`).Scan(&deep.createdAt, &deep.id)
	bounded := func(t *testing.T, what, plan, index, table string, limit int) {
		t.Helper()
		if !strings.Contains(plan, "Index Scan using "+index) || strings.Contains(plan, "Sort") {
			t.Fatalf("%s: want an ordered scan of %s and no sort:\n%s", what, index, plan)
		}
		// Every scan of the list's table reads at most the page (the
		// session's own lookup reads one row of sessions by its hash).
		scanned := regexp.MustCompile(`(Index Scan|Index Only Scan|Seq Scan|Bitmap Heap Scan)[^\n]* on ` + table + `( [a-z_0-9]+)? \(actual rows=(\d+) loops=(\d+)\)`)
		for _, m := range scanned.FindAllStringSubmatch(plan, -1) {
			n, _ := strconv.Atoi(m[3])
			loops, _ := strconv.Atoi(m[4])
			if n*loops > limit || m[1] == "Seq Scan" {
				t.Fatalf("%s: %s read %d rows (%s), more than the page's %d:\n%s", what, table, n*loops, m[1], limit, plan)
			}
		}
	}
	// Every list the route table serves has its page's plan checked here:
	// a list without a row fails, naming its route.
	plans := map[string]func(t *testing.T){
		"GET /api/v1/items": func(t *testing.T) {
			for _, c := range []struct {
				what, email, index string
				after              position
			}{
				{"u2's first page", "u2@example.com", "items_owner_created_idx", beforeAll},
				{"u2's page 15,000 deep", "u2@example.com", "items_owner_created_idx", deep},
				{"u3's first page", "u3@example.com", "items_owner_created_idx", beforeAll},
				{"the superuser's first page", "u1@example.com", "items_created_idx", beforeAll},
				{"the superuser's page deep", "u1@example.com", "items_created_idx", deep},
			} {
				bounded(t, c.what, asSession(c.email, itemsCountSQL, itemsPageSQL, c.after.createdAt, c.after.id, 21), c.index, "items", 21)
			}
			// A superuser's own items (mine=true): their branch of the index.
			for _, first := range []position{beforeAll, deep} {
				bounded(t, "the superuser's own items", asSession("u1@example.com", itemsCountSQL, mineItemsPageSQL, first.createdAt, first.id, 21), "items_owner_created_idx", "items", 21)
			}
			// An offset page finds where it starts on the index alone, reading no
			// skipped row from the table, then reads its own rows from there.
			for _, c := range []struct{ what, email, index string }{
				{"u2's page at offset 9,980", "u2@example.com", "items_owner_created_idx"},
				{"the superuser's page at offset 9,980", "u1@example.com", "items_created_idx"},
			} {
				plan := asSession(c.email, itemsCountSQL, itemsOffsetPageSQL, beforeAll.createdAt, beforeAll.id, 21, 9980)
				if c.what == "u2's page at offset 9,980" {
					mine := asSession(c.email, itemsCountSQL, mineItemsOffsetPageSQL, beforeAll.createdAt, beforeAll.id, 21, 9980)
					if !strings.Contains(mine, "Index Only Scan using items_owner_created_idx") || strings.Contains(mine, "Sort") {
						t.Fatalf("mine at offset 9,980: want the skip on items_owner_created_idx alone, no sort:\n%s", mine)
					}
				}
				skip := regexp.MustCompile(`Index Only Scan using ` + c.index + ` on items [a-z_0-9]+ \(actual rows=9981 loops=1\)\n.*\n *Heap Fetches: 0\n`)
				page := regexp.MustCompile(`Index Scan using ` + c.index + ` on items( [a-z_0-9]+)? \(actual rows=21 loops=1\)`)
				if !skip.MatchString(plan) || !page.MatchString(plan) || strings.Contains(plan, "Sort") {
					t.Fatalf("%s: want 9,981 rows skipped on %s alone, then the page's 21 read, and no sort:\n%s", c.what, c.index, plan)
				}
			}
		},
		"GET /api/v1/users/me/sessions": func(t *testing.T) {
			bounded(t, "a user's sessions", asSession("u2@example.com", sessionsCountSQL, sessionsPageSQL, beforeAll.createdAt, beforeAll.id, 21, 0), "sessions_user_created_idx", "sessions x", 51)
		},
		"GET /api/v1/users/me/passkeys": func(t *testing.T) {
			var u2 string
			conn.QueryRowContext(ctx, `SELECT id FROM users WHERE email = 'u2@example.com'`).Scan(&u2)
			// An account holds at most maxPasskeys: any page reads at most
			// those, found on the account's index (PostgreSQL may sort 20
			// rows rather than walk them in order).
			plan := explain(passkeysPageSQL, u2, beforeAll.createdAt, beforeAll.id, 11, 0)
			read := regexp.MustCompile(`(Index Scan|Bitmap Heap Scan|Seq Scan)[^\n]* on passkeys \(actual rows=(\d+) loops=1\)`).FindStringSubmatch(plan)
			if read == nil {
				t.Fatalf("a user's passkeys: no scan of passkeys in:\n%s", plan)
			}
			if n, _ := strconv.Atoi(read[2]); !strings.Contains(plan, "passkeys_user_created_idx") || read[1] == "Seq Scan" || n > maxPasskeys {
				t.Fatalf("a user's passkeys: want at most %d rows read on passkeys_user_created_idx:\n%s", maxPasskeys, plan)
			}
		},
		"GET /api/v1/users": func(t *testing.T) {
			bounded(t, "the users' first page", explain(usersPageSQL, beforeAll.createdAt, beforeAll.id, 21, 0), "users_created_at_idx", "users", 21)
		},
	}
	lists := listRoutes(t)
	for _, route := range lists {
		check, ok := plans[route]
		if !ok {
			t.Errorf("the list %s has no row in this test: add its page's plan to plans", route)
			continue
		}
		t.Run(route, check)
	}
	if len(lists) != len(plans) {
		t.Errorf("plans has %d rows for %d lists: %v", len(plans), len(lists), lists)
	}
	// One item by id: the primary key, for owner and superuser alike.
	for _, email := range []string{"u2@example.com", "u1@example.com"} {
		if plan := asSession(email, "SELECT 0 AS total", itemSQL, deep.id); !regexp.MustCompile(`Index Scan using items_pkey on items.*\(actual rows=1`).MatchString(plan) {
			t.Fatalf("%s: one item is not one primary-key lookup:\n%s", email, plan)
		}
	}
}

// listRoutes are the routes that answer a Page: the GETs whose 200 is a
// Page in openapi.json.
func listRoutes(t *testing.T) []string {
	t.Helper()
	var lists []string
	for _, route := range routes(t) {
		method, path, _ := strings.Cut(route, " ")
		op, _ := specOperation(t, method, path)
		if method != "GET" || op == nil {
			continue
		}
		ok := resolve(t, asMap(asMap(op["responses"])["200"]))
		schema := asMap(asMap(asMap(ok["content"])["application/json"])["schema"])
		if ref, _ := schema["$ref"].(string); strings.HasSuffix(ref, "Page") {
			lists = append(lists, route)
		}
	}
	if len(lists) < 3 {
		t.Fatalf("only %d lists found in the route table: %v", len(lists), lists)
	}
	return lists
}

// Every table the migrations create is in schemaProbe, so /health fails
// while an upgrade's schema lacks one (schema_migrations is migrate's own).
func TestSchemaProbeNamesEveryTable(t *testing.T) {
	created := regexp.MustCompile(`(?i)CREATE TABLE (?:IF NOT EXISTS )?([a-z_0-9]+)`)
	dropped := regexp.MustCompile(`(?i)DROP TABLE (?:IF EXISTS )?([a-z_0-9]+)`)
	files, _ := migrationFiles.ReadDir("migrations")
	tables := map[string]bool{}
	for _, f := range files {
		src, _ := migrationFiles.ReadFile("migrations/" + f.Name())
		for _, m := range created.FindAllStringSubmatch(string(src), -1) {
			tables[m[1]] = true
		}
		for _, m := range dropped.FindAllStringSubmatch(string(src), -1) {
			delete(tables, m[1])
		}
	}
	if len(tables) < 10 {
		t.Fatalf("only %d tables found in migrations/: %v", len(tables), tables)
	}
	for table := range tables {
		if !regexp.MustCompile(`FROM ` + table + ` LIMIT 0`).MatchString(schemaProbe) {
			t.Errorf("migrations create the table %s, which schemaProbe (store_schema.go) does not name: add its columns there", table)
		}
	}
}

// The pool asks for generic plans, unless DATABASE_URL says otherwise, in
// both forms of a DSN; and a list statement is then planned once, not at
// every call.
func TestPoolUsesGenericPlans(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://app:pw@db/app?sslmode=disable":   "postgres://app:pw@db/app?plan_cache_mode=force_generic_plan&sslmode=disable",
		"postgres://app@db/app?plan_cache_mode=auto": "postgres://app@db/app?plan_cache_mode=auto",
		"host=db user=app dbname=app":                "host=db user=app dbname=app plan_cache_mode=force_generic_plan",
	} {
		if got := genericPlans(dsn); got != want {
			t.Errorf("genericPlans(%q) = %q, want %q", dsn, got, want)
		}
	}
	a := newTestApp(t, nil)
	_, token := a.signup("plans@example.com")
	a.db.SetMaxOpenConns(1) // one connection: its prepared statements are the ones asked
	for range 10 {
		expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items", token: token}), 200)
	}
	var generic, custom int
	a.db.QueryRow(`SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH viewer%item_counts%'`).Scan(&generic, &custom)
	if generic < 10 || custom != 0 {
		t.Fatalf("the item list was planned %d times afresh and %d times from its generic plan", custom, generic)
	}
}
