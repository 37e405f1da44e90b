package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPasswordHashFullCost is the one test that pays OWASP's 600,000
// iterations.
func TestPasswordHashFullCost(t *testing.T) {
	pw := newPasswordHasher(passwordIterations, 1)
	hash, err := pw.hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" || parts[1] != "600000" || len(parts[2]) != 22 || len(parts[3]) != 43 {
		t.Fatalf("hash %q is not pbkdf2-sha256$600000$<16-byte salt>$<32-byte key>", hash)
	}
	ok, stale, err := pw.verify(context.Background(), "correct horse", hash)
	if !ok || stale || err != nil {
		t.Fatalf("verify: ok=%v stale=%v err=%v", ok, stale, err)
	}
	if ok, _, _ := pw.verify(context.Background(), "correct hors", hash); ok {
		t.Fatal("a wrong password verified")
	}
	other, _ := pw.hash(context.Background(), "correct horse")
	if other == hash {
		t.Fatal("two hashes of one password are equal: no salt")
	}
}

func TestStaleHashIsUpgradedAtLogin(t *testing.T) {
	a := newTestApp(t, nil)
	old := newPasswordHasher(testIterations/2, 1)
	hash, _ := old.hash(context.Background(), "password-123")
	if _, err := a.deps.store.ensureUser(context.Background(), user{Email: "old@example.com", passwordHash: hash}); err != nil {
		t.Fatal(err)
	}
	a.login("old@example.com", "password-123")
	var now string
	a.db.QueryRow(`SELECT password_hash FROM users WHERE email = 'old@example.com'`).Scan(&now)
	if !strings.HasPrefix(now, "pbkdf2-sha256$1000$") {
		t.Fatalf("hash not upgraded: %q", now)
	}
	a.login("old@example.com", "password-123")
	if len(a.logs.linesWith(t, "msg", "password hash upgraded")) != 1 {
		t.Fatal("want exactly one upgrade line")
	}
	// The upgrade line belongs to the login request.
	line := a.logs.linesWith(t, "msg", "password hash upgraded")[0]
	if line["request_id"] == nil || line["request_id"] == "" {
		t.Fatalf("upgrade line lacks request_id: %v", line)
	}
}

func TestHashingIsBounded(t *testing.T) {
	pw := newPasswordHasher(testIterations, 1)
	pw.maxWait = 20 * time.Millisecond
	if err := pw.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := pw.hash(context.Background(), "password-123")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != codeUnavailable || ae.RetryAfter <= 0 {
		t.Fatalf("a hash beyond the bound: %v", err)
	}
	pw.release()
	if _, err := pw.hash(context.Background(), "password-123"); err != nil {
		t.Fatalf("after release: %v", err)
	}

	// Over HTTP the refusal is a 503 problem with Retry-After.
	a := newTestApp(t, nil)
	a.deps.hasher.maxWait = 20 * time.Millisecond
	for range cap(a.deps.hasher.slots) {
		a.deps.hasher.acquire(context.Background())
	}
	r := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "x@example.com", "password": "password-123"}})
	expectProblem(t, r, 503, "unavailable")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After=%q", r.header.Get("Retry-After"))
	}
}
