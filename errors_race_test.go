package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A client that gives up mid-login is logged as 499 at info, never as an
// error (anyone could trigger alerts), and gets nothing written.
func TestClientGoneMidLoginIs499(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("slow@example.com", "password-123")
	a.deps.hasher.iterations = 1_000_000 // the unknown email burns a hash long enough to hang up during
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "POST", a.srv.URL+"/api/v1/auth/login", strings.NewReader(`{"email":"nobody@example.com","password":"wrong-password"}`))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Request-ID", "gone-1")
	if _, err := http.DefaultClient.Do(hr); err == nil {
		t.Fatal("the request was answered before the client left")
	}
	var line map[string]any
	for deadline := time.Now().Add(20 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range a.logs.linesWith(t, "request_id", "gone-1") {
			if l["msg"] == "request" {
				line = l
			}
		}
	}
	if line == nil || line["status"] != float64(499) || line["level"] != "INFO" {
		t.Fatalf("access line %v, want status 499 at INFO", line)
	}
	for _, l := range a.logs.lines(t) {
		if l["level"] == "ERROR" {
			t.Fatalf("a client leaving was logged as an error: %v", l)
		}
	}
}

// Deleting an account while its owner posts items answers what the request
// would a moment later (401), never 500.
func TestDeleteWhileWritingIsNot500(t *testing.T) {
	a := newTestApp(t, nil)
	id, token := a.signup("racer@example.com")
	_, su := a.superuser("root@example.com")
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 4 {
		wg.Go(func() {
			for range 40 {
				r := doRequestNoSpec(t, a.srv.URL, req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "t"}})
				if r.status == 0 {
					return
				}
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/" + id, token: su}), 204)
	wg.Wait()
	for s, n := range statuses {
		if s != 201 && s != 401 {
			t.Fatalf("statuses %v: %d answers of %d", statuses, n, s)
		}
	}
	// The store's own word for a write whose owner is gone: missing.
	now := time.Now().UTC()
	err := a.deps.store.createItem(context.Background(), item{ID: newUUID(), OwnerID: id, Title: "late", CreatedAt: now, UpdatedAt: now}, keptAnswer{})
	if !errors.Is(err, errMissing) {
		t.Fatalf("createItem for a deleted owner: %v, want errMissing", err)
	}
}

// Requests that arrive while another replica holds the migration lock (the
// schema not there yet) are 503 unavailable, not 500.
func TestRequestsDuringMigrationAre503(t *testing.T) {
	db, dsn := newTestDB(t)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		t.Fatal(err)
	}
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn})
	r := doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "early@example.com", "password": "password-123"}})
	expectProblem(t, r, 503, "unavailable")
	r = doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "early@example.com", "password": "password-123"}})
	expectProblem(t, r, 503, "unavailable")
	if h := doRequest(t, rn.url(), req{method: "GET", path: "/api/v1/health"}); h.status != 503 {
		t.Fatalf("health while migrations wait: %d", h.status)
	}
	tx.Rollback() // the other replica is done (here: gave up); ours migrates
	waitReady(t, rn.url())
	expectStatus(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "early@example.com", "password": "password-123"}}), 201)
	for _, l := range rn.logs.lines(t) {
		if l["status"] == float64(500) {
			t.Fatalf("a 500 while migrating: %v", l)
		}
	}
}
