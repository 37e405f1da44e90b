package main

import (
	"database/sql"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	a := newTestApp(t, nil)
	r := a.do(req{method: "GET", path: "/api/v1/health"})
	expectStatus(t, r, http.StatusOK)
	if r.header.Get("Content-Type") != "application/health+json" {
		t.Fatalf("Content-Type=%q", r.header.Get("Content-Type"))
	}
	checks := r.json["checks"].(map[string]any)["database"].(map[string]any)
	if r.str("status") != "pass" || r.str("version") != "test" || r.str("commit") != "abc1234" || checks["status"] != "pass" {
		t.Fatalf("health document: %s", r.body)
	}
	if _, ok := checks["latency_ms"].(float64); !ok {
		t.Fatalf("no latency_ms: %s", r.body)
	}
	if _, ok := r.json["uptime_seconds"].(float64); !ok {
		t.Fatalf("no uptime_seconds: %s", r.body)
	}

	live := a.do(req{method: "GET", path: "/api/v1/health/live"})
	if live.status != 200 || live.str("status") != "pass" || live.header.Get("Content-Type") != "application/health+json" {
		t.Fatalf("live: %d %s", live.status, live.body)
	}
	// A probe (or a proxy keeping the connection) reads a sized answer, never chunks.
	if live.header.Get("Content-Length") != strconv.Itoa(len(live.body)) {
		t.Fatalf("live: Content-Length %q for %d bytes", live.header.Get("Content-Length"), len(live.body))
	}
	if head := a.do(req{method: "HEAD", path: "/api/v1/health/live"}); head.status != 200 || head.header.Get("Content-Length") != strconv.Itoa(len(live.body)) || len(head.body) != 0 {
		t.Fatalf("HEAD live: %d, Content-Length %q, %d bytes of body", head.status, head.header.Get("Content-Length"), len(head.body))
	}

	// Probe lines stay at debug, hidden at the default level.
	for _, l := range a.logs.linesWith(t, "path", "/api/v1/health") {
		if l["level"] != "DEBUG" {
			t.Fatalf("health access line at %v", l["level"])
		}
	}

	a.deps.health.draining.Store(true)
	r = a.do(req{method: "GET", path: "/api/v1/health"})
	if r.status != 503 || r.str("status") != "fail" || r.str("output") != "shutting down" || r.header.Get("Content-Type") != "application/health+json" {
		t.Fatalf("draining: %d %s", r.status, r.body)
	}
	if live := a.do(req{method: "GET", path: "/api/v1/health/live"}); live.status != 200 {
		t.Fatalf("liveness failed while draining: %d", live.status)
	}
}

func TestHealthDatabaseDown(t *testing.T) {
	db, err := sql.Open("pgx", "postgres://postgres:hunter2-secret@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := newTestApp(t, nil)
	a.deps.health.db = db
	r := a.do(req{method: "GET", path: "/api/v1/health"})
	if r.status != 503 || r.header.Get("Content-Type") != "application/health+json" {
		t.Fatalf("db down: %d %s", r.status, r.body)
	}
	check := r.json["checks"].(map[string]any)["database"].(map[string]any)
	if r.str("status") != "fail" || check["status"] != "fail" || check["output"] != "database unreachable" {
		t.Fatalf("db down document: %s", r.body)
	}
	if strings.Contains(string(r.body), "hunter2") || strings.Contains(a.logs.String(), "hunter2") {
		t.Fatal("the DSN password leaked")
	}
	if live := a.do(req{method: "GET", path: "/api/v1/health/live"}); live.status != 200 {
		t.Fatalf("liveness touched the database: %d", live.status)
	}
}

// The migration window: a column, a table or a function the code uses,
// missing under a running server (as between a deploy and its migration),
// answers 503 with Retry-After, never 500, and /health fails until the
// schema is current again.
func TestSchemaBehindTheCodeAnswers503(t *testing.T) {
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "SHUTDOWN_DELAY": "0s"})
	waitReady(t, rn.url())
	base := rn.url()
	db := mustOpen(t, dsn)
	expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "u@example.com", "password": "password-123"}}), 201)
	token := doRequest(t, base, req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "u@example.com", "password": "password-123"}}).str("access_token")
	health := func() response { return doRequest(t, base, req{method: "GET", path: "/api/v1/health"}) }
	for _, c := range []struct{ name, drop, restore string }{
		{"column", `ALTER TABLE items DROP COLUMN updated_at`, `ALTER TABLE items ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()`},
		{"table", `ALTER TABLE items RENAME TO items_moved`, `ALTER TABLE items_moved RENAME TO items`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := db.Exec(c.drop); err != nil {
				t.Fatal(err)
			}
			r := doRequest(t, base, req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "t", "description": "d"}})
			expectProblem(t, r, 503, "unavailable")
			if r.header.Get("Retry-After") == "" {
				t.Fatal("a 503 of the migration window without Retry-After")
			}
			expectProblem(t, doRequest(t, base, req{method: "GET", path: "/api/v1/items", token: token}), 503, "unavailable")
			h := health()
			if h.status != 503 || h.json["checks"].(map[string]any)["database"].(map[string]any)["output"] != "database schema not current" {
				t.Fatalf("health with the schema behind: %d %s", h.status, h.body)
			}
			if _, err := db.Exec(c.restore); err != nil {
				t.Fatal(err)
			}
			expectStatus(t, health(), 200)
			expectStatus(t, doRequest(t, base, req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "t"}}), 201)
		})
	}
	for _, l := range rn.logs.lines(t) {
		if l["status"] == float64(500) {
			t.Fatalf("a 500 in the migration window: %v", l)
		}
	}
	// The code calls no function of its own yet; an undefined one is sorted
	// the same way.
	_, err := db.Exec(`SELECT function_of_a_later_release()`)
	if ae := asAPIError(classify(err, "Item")); ae.Code != codeUnavailable || ae.RetryAfter == 0 {
		t.Fatalf("an undefined function: %v, answered %s", err, ae.Code)
	}
}
