package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPasswordHashFullCost is the one test that pays OWASP's 600,000
// iterations.
func TestPasswordHashFullCost(t *testing.T) {
	pw := newPasswordHasher(passwordIterations, 1)
	hash, err := pw.hash(context.Background(), hashClaim{}, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" || parts[1] != "600000" || len(parts[2]) != 22 || len(parts[3]) != 43 {
		t.Fatalf("hash %q is not pbkdf2-sha256$600000$<16-byte salt>$<32-byte key>", hash)
	}
	ok, stale, err := pw.verify(context.Background(), hashClaim{}, "correct horse", hash)
	if !ok || stale || err != nil {
		t.Fatalf("verify: ok=%v stale=%v err=%v", ok, stale, err)
	}
	if ok, _, _ := pw.verify(context.Background(), hashClaim{}, "correct hors", hash); ok {
		t.Fatal("a wrong password verified")
	}
	other, _ := pw.hash(context.Background(), hashClaim{}, "correct horse")
	if other == hash {
		t.Fatal("two hashes of one password are equal: no salt")
	}
}

func TestStaleHashIsUpgradedAtLogin(t *testing.T) {
	a := newTestApp(t, nil)
	old := newPasswordHasher(testIterations/2, 1)
	hash, _ := old.hash(context.Background(), hashClaim{}, "password-123")
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
	if err := pw.acquire(context.Background(), hashClaim{}); err != nil {
		t.Fatal(err)
	}
	_, err := pw.hash(context.Background(), hashClaim{}, "password-123")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code != codeUnavailable || ae.RetryAfter <= 0 {
		t.Fatalf("a hash beyond the bound: %v", err)
	}
	pw.release()
	if _, err := pw.hash(context.Background(), hashClaim{}, "password-123"); err != nil {
		t.Fatalf("after release: %v", err)
	}

	// Over HTTP the refusal is a 503 problem with Retry-After.
	a := newTestApp(t, nil)
	a.deps.hasher.maxWait = 20 * time.Millisecond
	for range a.deps.hasher.slots {
		a.deps.hasher.acquire(context.Background(), hashClaim{first: true})
	}
	r := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "x@example.com", "password": "password-123"}})
	expectProblem(t, r, 503, "unavailable")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After=%q", r.header.Get("Retry-After"))
	}
}

// The hasher's slots go first to claims that go first, then to client
// networks in turn; a network with its share waiting is refused at once,
// and a claim that gives up leaves its place.
func TestHashSlotsAreSharedFairly(t *testing.T) {
	pw := newPasswordHasher(testIterations, 1)
	pw.maxWait = time.Minute
	ctx := context.Background()
	if err := pw.acquire(ctx, hashClaim{network: "x"}); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 10)
	queued := func(n int64) { // wait until n claims wait, so they queue in the order given
		for deadline := time.Now().Add(5 * time.Second); pw.waiting.Load() != n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d claims waiting, want %d", pw.waiting.Load(), n)
			}
		}
	}
	wait := func(name string, c hashClaim) {
		n := pw.waiting.Load()
		go func() {
			if err := pw.acquire(ctx, c); err != nil {
				order <- name + " refused"
				return
			}
			order <- name
		}()
		queued(n + 1)
	}
	wait("a1", hashClaim{network: "a"})
	wait("a2", hashClaim{network: "a"})
	if err := pw.acquire(ctx, hashClaim{network: "a"}); !errors.Is(err, errHasherBusy) {
		t.Fatalf("a third claim of one network: %v, want refused at once", err)
	}
	wait("b1", hashClaim{network: "b"})
	wait("owner", hashClaim{network: "c", first: true})
	gone, cancel := context.WithCancel(ctx)
	go pw.acquire(gone, hashClaim{network: "d"})
	queued(5)
	cancel() // gives up its place
	queued(4)
	var got []string
	for range 4 {
		pw.release()
		got = append(got, <-order)
	}
	if want := "owner a1 b1 a2"; strings.Join(got, " ") != want {
		t.Fatalf("slots went to %v, want %s", got, want)
	}
	pw.release()
	if pw.busy() != 0 || pw.waiting.Load() != 0 {
		t.Fatalf("after every release: %d running, %d waiting", pw.busy(), pw.waiting.Load())
	}
}

// newUUID makes version-4 UUIDs PostgreSQL takes, never the same twice.
func TestNewUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newUUID()
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("newUUID gave %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}
