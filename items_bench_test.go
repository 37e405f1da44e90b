package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// itemsFixture is one user with 50 items, and their token. BENCH_ENV_*
// variables reach the app's config (BENCH_ENV_DB_MAX_IDLE_CONNS=10 measures
// the old pool default).
func itemsFixture(b *testing.B) (*testApp, string) {
	env := map[string]string{"LOG_LEVEL": "info"}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "BENCH_ENV_") {
			env[strings.TrimPrefix(k, "BENCH_ENV_")] = v
		}
	}
	a := newTestApp(b, env)
	_, token := a.signup("bench@example.com")
	for i := range 50 {
		a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": fmt.Sprintf("item %d", i), "description": "a description"}})
	}
	return a, token
}

// benchClients runs one request of fn per iteration from 32 concurrent
// clients on 2 cores (as the load script runs) and reports requests/s.
// First every client runs fn ten times, untimed, so each pooled connection
// has its statements prepared and planned: a running server's connections
// are warm, and each fixture's are new.
func benchClients(b *testing.B, fn func() error) {
	const clients = 32
	var warm sync.WaitGroup
	for range clients {
		warm.Go(func() {
			for range 10 {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	warm.Wait()
	b.SetParallelism(clients / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := fn(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkItemListHTTP is an authenticated GET /api/v1/items (a page of
// 20) over real HTTP against the real database: middleware, session lookup,
// the page and its total, JSON.
func BenchmarkItemListHTTP(b *testing.B) {
	a, token := itemsFixture(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	benchClients(b, func() error { return getItems(client, a.srv.URL+"/api/v1/items", token) })
}

// BenchmarkItemListSQL is the store's own plan without HTTP: the session,
// the page and its total in one statement.
func BenchmarkItemListSQL(b *testing.B) {
	a, token := itemsFixture(b)
	hash, ctx := hashToken(token), context.Background()
	benchClients(b, func() error {
		_, _, items, _, err := a.deps.store.itemsPageAs(ctx, hash, a.cfg.sessions(), pageQuery{limit: 20, after: beforeAll, list: "items"}, false)
		if err == nil && len(items) != 21 {
			err = fmt.Errorf("list: %d items", len(items))
		}
		return err
	})
}

// BenchmarkItemListNaiveSQL is the database's own ceiling for the naive
// plan: three statements (session, count, page) through database/sql with
// the same pool and concurrency, no HTTP. The hot-path goal is the HTTP
// list at 0.8x of this or better.
func BenchmarkItemListNaiveSQL(b *testing.B) {
	a, token := itemsFixture(b)
	hash, ctx := hashToken(token), context.Background()
	benchClients(b, func() error {
		var sessionID string
		var lastUsed time.Time
		now := a.deps.store.timestamp()
		u, err := a.deps.store.scanUser(a.db.QueryRowContext(ctx, liveSessionSQL, hash, now, now.Add(-a.cfg.SessionIdle)), &sessionID, &lastUsed)
		if err != nil {
			return err
		}
		var count int
		if err := a.db.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE owner_id = $1`, u.ID).Scan(&count); err != nil {
			return err
		}
		rows, err := a.db.QueryContext(ctx, `SELECT `+itemColumns+` FROM items WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 0`, u.ID)
		items, err := collect(rows, err, func(r rowScanner) (item, error) { return scanItem(r) })
		if err == nil && len(items) != 20 {
			err = fmt.Errorf("page: %d items", len(items))
		}
		return err
	})
}

// BenchmarkItemListDepth is the list's cost against the size of the
// collection, in one run against one server: the first page of a user with
// 20 items and of one with 200,000, a page by cursor 190,000 items deep,
// and the deepest offset allowed (9,980). make bench prints each against
// the small user's first page.
func BenchmarkItemListDepth(b *testing.B) {
	// Its clients make more requests a minute than the tests' API limit
	// allows when run with -count.
	a := newTestApp(b, map[string]string{"LOG_LEVEL": "info", "RATE_LIMIT_API_REQUESTS": "100000000"})
	_, small := a.signup("small@example.com")
	bigID, big := a.signup("big@example.com")
	for i := range 20 {
		a.do(req{method: "POST", path: "/api/v1/items", token: small, body: map[string]any{"title": fmt.Sprintf("item %d", i)}})
	}
	if _, err := a.db.Exec(`INSERT INTO items (owner_id, title, description, created_at, updated_at)
		SELECT $1, 'item ' || g, 'a description', now() - g * interval '1 ms', now() FROM generate_series(1, 200000) g`, bigID); err != nil {
		b.Fatal(err)
	}
	// As autovacuum leaves a table after a bulk of inserts: statistics, and
	// the visibility map that lets an index-only scan skip the heap.
	if _, err := a.db.Exec(`VACUUM ANALYZE items`); err != nil {
		b.Fatal(err)
	}
	var deep position
	a.db.QueryRow(`SELECT created_at, id FROM items WHERE owner_id = $1 ORDER BY created_at DESC, id DESC OFFSET 190000 LIMIT 1`, bigID).Scan(&deep.createdAt, &deep.id)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct{ name, token, query string }{
		{"SmallFirst", small, ""},
		{"BigFirst", big, ""},
		{"BigCursorDeep", big, "?cursor=" + a.deps.cursors.encode("items", deep)},
		{"BigOffset9980", big, "?offset=9980"},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchClients(b, func() error { return getItems(client, a.srv.URL+"/api/v1/items"+c.query, c.token) })
		})
	}
}

// getItems is one GET of an item list as the benchmarks' clients make it:
// the body read whole, anything but a 200 an error.
func getItems(client *http.Client, url, token string) error {
	r, _ := http.NewRequest("GET", url, nil)
	r.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(r)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
