package main

import (
	"database/sql"
	"net/http"
	"strconv"
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
	if contains(string(r.body), "hunter2") || contains(a.logs.String(), "hunter2") {
		t.Fatal("the DSN password leaked")
	}
	if live := a.do(req{method: "GET", path: "/api/v1/health/live"}); live.status != 200 {
		t.Fatalf("liveness touched the database: %d", live.status)
	}
}
