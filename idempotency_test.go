package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyedPost is a POST with an Idempotency-Key.
func keyedPost(path, token, key string, body any) req {
	return req{method: "POST", path: path, token: token, body: body, header: map[string]string{"Idempotency-Key": key}}
}

// The same POST /items with one key, twice: the second answer is the
// first, byte for byte, with Idempotent-Replayed, and one item exists.
// Another body under the key is 422; another user's identical key is
// their own; after 24 hours the key is free again.
func TestIdempotentCreateHappensOnce(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	const key = "create-milk-0001"
	body := map[string]any{"title": "Buy milk", "description": "Two litres"}
	first := a.do(keyedPost("/api/v1/items", token, key, body))
	expectStatus(t, first, 201)
	if first.header.Get("Idempotent-Replayed") != "" || first.header.Get("ETag") == "" {
		t.Fatalf("first answer's headers: %v", first.header)
	}
	again := a.do(keyedPost("/api/v1/items", token, `"`+key+`"`, body)) // the structured-field form is the same key
	expectStatus(t, again, 201)
	if !bytes.Equal(again.body, first.body) || again.header.Get("Location") != first.header.Get("Location") ||
		again.header.Get("Content-Type") != first.header.Get("Content-Type") || again.header.Get("Idempotent-Replayed") != "true" ||
		again.header.Get("Content-Length") != strconv.Itoa(len(first.body)) {
		t.Fatalf("the replay differs:\n%s %v\n%s %v", first.body, first.header, again.body, again.header)
	}
	if n := countItems(t, a.dsn); n != 1 {
		t.Fatalf("%d items after a repeat, want 1", n)
	}

	// Another request under the key: refused before its body is validated.
	for _, other := range []any{map[string]any{"title": "Buy bread"}, map[string]any{"title": ""}} {
		expectProblem(t, a.do(keyedPost("/api/v1/items", token, key, other)), 422, "idempotency_key_reused")
	}
	r := a.do(req{method: "POST", path: "/api/v1/items?x=1", token: token, body: body, header: map[string]string{"Idempotency-Key": key}})
	expectProblem(t, r, 422, "idempotency_key_reused") // another path
	if n := countItems(t, a.dsn); n != 1 {
		t.Fatalf("%d items after refusals, want 1", n)
	}

	// Another user's identical key makes their own item.
	a.register("grace@example.com", "password-123")
	grace := a.login("grace@example.com", "password-123")
	theirs := a.do(keyedPost("/api/v1/items", grace, key, body))
	if theirs.status != 201 {
		t.Fatalf("%s %s\n%s", grace, theirs.body, a.logs.String())
	}
	if theirs.header.Get("Idempotent-Replayed") != "" || theirs.str("id") == first.str("id") {
		t.Fatalf("another user's key replayed Ada's answer: %s", theirs.body)
	}

	// After 24 hours the key is free: a new item.
	a.clock.Advance(idempotencyTTL + time.Second)
	token = a.login("ada@example.com", "password-123") // the session ended meanwhile
	later := a.do(keyedPost("/api/v1/items", token, key, body))
	expectStatus(t, later, 201)
	if later.header.Get("Idempotent-Replayed") != "" || later.str("id") == first.str("id") {
		t.Fatalf("a key past its 24 hours replayed: %s", later.body)
	}
	if n := countItems(t, a.dsn); n != 3 {
		t.Fatalf("%d items, want 3", n)
	}
}

// A failed request keeps nothing: the key stays free for the corrected
// one. Malformed keys, bodies and content types are 4xx and write nothing.
func TestIdempotencyKeyRefusals(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	const key = "retry-after-fix-1"
	expectProblem(t, a.do(keyedPost("/api/v1/items", token, key, map[string]any{"title": ""})), 422, "validation_failed")
	expectProblem(t, a.do(keyedPost("/api/v1/items", token, key, `{"title":`)), 400, "bad_request")
	expectStatus(t, a.do(keyedPost("/api/v1/items", token, key, map[string]any{"title": "Fixed"})), 201)

	body := map[string]any{"title": "x"}
	for name, h := range map[string]map[string]string{
		"too short":         {"Idempotency-Key": "short"},
		"too long":          {"Idempotency-Key": strings.Repeat("k", 256)},
		"a space":           {"Idempotency-Key": "has a space in it!"},
		"a slash":           {"Idempotency-Key": "../../etc/passwd-xx"},
		"unbalanced quote":  {"Idempotency-Key": `"abcdefghijklmnopq`},
		"non-ASCII":         {"Idempotency-Key": "clé-de-idempotence"},
		"empty":             {"Idempotency-Key": ""},
		"structured params": {"Idempotency-Key": `"abcdefghijklmnopq";x=1`},
	} {
		t.Run(name, func(t *testing.T) {
			r := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: body, header: h})
			expectProblem(t, r, 400, "bad_request")
		})
	}
	r := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: "title=x", contentType: "application/x-www-form-urlencoded", header: map[string]string{"Idempotency-Key": "form-body-000001"}})
	expectProblem(t, r, 415, "unsupported_media_type")
	big := strings.Repeat("x", 2<<20)
	r = a.do(keyedPost("/api/v1/items", token, "too-big-body-0001", map[string]any{"title": big}))
	expectProblem(t, r, 413, "payload_too_large")
	if n := countItems(t, a.dsn); n != 1 {
		t.Fatalf("%d items, want the one fixed request", n)
	}
	// Two headers are not one key.
	hr, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/items", strings.NewReader(`{"title":"x"}`))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Add("Idempotency-Key", "first-key-0000001")
	hr.Header.Add("Idempotency-Key", "second-key-000001")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("two Idempotency-Key headers: %d, want 400", resp.StatusCode)
	}
}

// 20 concurrent requests with one key: exactly one item; every answer is
// that item's (first or replayed) or 409 idempotency_in_progress.
func TestIdempotentConcurrentRequests(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	const n = 20
	type answer struct {
		status   int
		replayed string
		body     string
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			hr, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/items", strings.NewReader(`{"title":"Once"}`))
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("Authorization", "Bearer "+token)
			hr.Header.Set("Idempotency-Key", "concurrent-key-01")
			<-start
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = answer{resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), string(b)}
		})
	}
	close(start)
	wg.Wait()
	created, replayed, inProgress := 0, 0, 0
	var first string
	for _, an := range answers {
		switch {
		case an.status == 201 && an.replayed == "":
			created++
			first = an.body
		case an.status == 201 && an.replayed == "true":
			replayed++
		case an.status == 409 && strings.Contains(an.body, `"code":"idempotency_in_progress"`):
			inProgress++
		default:
			t.Errorf("unexpected answer: %d %s", an.status, an.body)
		}
	}
	for _, an := range answers {
		if an.status == 201 && an.body != first {
			t.Errorf("a replay differs from the first answer: %s vs %s", an.body, first)
		}
	}
	if created != 1 || countItems(t, a.dsn) != 1 {
		t.Fatalf("created %d, items %d, want 1 and 1 (replayed %d, in progress %d)", created, countItems(t, a.dsn), replayed, inProgress)
	}
	t.Logf("20 at once: 1 created, %d replayed, %d told it was in progress", replayed, inProgress)

	// A first request still running (its transaction holds the key, as a
	// slow one on another replica would): the repeat is 409 at once, and
	// once the first ends without effect the key is free.
	me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token})
	tx, err := a.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 0))`, "user "+me.str("id"), "slow-first-key-01"); err != nil {
		t.Fatal(err)
	}
	expectProblem(t, a.do(keyedPost("/api/v1/items", token, "slow-first-key-01", map[string]any{"title": "Slow"})), 409, "idempotency_in_progress")
	tx.Rollback()
	expectStatus(t, a.do(keyedPost("/api/v1/items", token, "slow-first-key-01", map[string]any{"title": "Slow"})), 201)
	if n := countItems(t, a.dsn); n != 2 {
		t.Fatalf("%d items, want 2", n)
	}
}

// Two replicas on one database: the repeat, sent to the other replica,
// is answered from what the first kept.
func TestIdempotentAcrossReplicas(t *testing.T) {
	db, dsn := migratedDB(t)
	one := newTestAppOn(t, db, dsn, nil)
	two := newTestAppOn(t, db, dsn, nil)
	one.register("ada@example.com", "password-123")
	token := one.login("ada@example.com", "password-123")
	body := map[string]any{"title": "Replicated"}
	first := one.do(keyedPost("/api/v1/items", token, "replica-key-00001", body))
	expectStatus(t, first, 201)
	again := two.do(keyedPost("/api/v1/items", token, "replica-key-00001", body))
	if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
		t.Fatalf("the other replica: %d %v %s", again.status, again.header, again.body)
	}
}

// Recovery retried with its key: two answers, one mail in a real SMTP
// server. Register, verification resends and admin creates replay too.
func TestIdempotentMailGoesOnce(t *testing.T) {
	smtp := startSMTP(t, freePort(t), t.TempDir())
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	a.deliverMail() // the verification mail of the registration
	for range 2 {
		expectStatus(t, a.do(keyedPost("/api/v1/auth/password-recovery", "", "recover-ada-00001", map[string]any{"email": "ada@example.com"})), 202)
	}
	a.deliverMailVia(smtp.port)
	if got := mailsTo(smtp.received(t), "ada@example.com", "Reset your password"); len(got) != 1 {
		t.Fatalf("%d recovery mails for two keyed requests, want 1", len(got))
	}

	first := a.do(keyedPost("/api/v1/auth/register", "", "register-bob-0001", map[string]any{"email": "bob@example.com", "password": "password-123"}))
	expectStatus(t, first, 201)
	again := a.do(keyedPost("/api/v1/auth/register", "", "register-bob-0001", map[string]any{"email": "bob@example.com", "password": "password-123"}))
	if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) ||
		again.header.Get("Content-Length") != strconv.Itoa(len(first.body)) || again.header.Get("ETag") != "" {
		t.Fatalf("a repeated registration: %d %v %s", again.status, again.header, again.body) // not 409: it is the same request
	}
	if got := mailsTo(a.deliverMail(), "bob@example.com", "Confirm your email"); len(got) != 1 {
		t.Fatalf("%d verification mails for a repeated registration, want 1", len(got))
	}
	for range 2 {
		expectStatus(t, a.do(keyedPost("/api/v1/auth/verify-email/resend", "", "resend-bob-00001", map[string]any{"email": "bob@example.com"})), 202)
	}
	bob := a.login("bob@example.com", "password-123")
	for range 2 {
		expectStatus(t, a.do(req{method: "POST", path: "/api/v1/users/me/verify-email", token: bob, header: map[string]string{"Idempotency-Key": "resend-me-000001"}}), 202)
	}
	if got := mailsTo(a.deliverMail(), "bob@example.com", "Confirm your email"); len(got) != 2 {
		t.Fatalf("%d verification mails for two resends sent twice each, want 2", len(got))
	}
	_, admin := a.superuser("root@example.com")
	for range 2 {
		expectStatus(t, a.do(keyedPost("/api/v1/users", admin, "admin-create-0001", map[string]any{"email": "cy@example.com", "password": "password-123"})), 201)
	}
}

// An answer that holds a secret is never kept: a repeat of a TOTP
// enrolment's start is told to start over, and the secret is not in it
// nor in the table.
func TestIdempotentSecretIsNotKept(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	start := keyedPost("/api/v1/users/me/mfa/totp", token, "totp-start-00001", map[string]any{"current_password": "password-123"})
	first := a.do(start)
	if first.status != 200 {
		t.Fatalf("%d %s\n%s", first.status, first.body, a.logs.String())
	}
	again := a.do(start)
	expectProblem(t, again, 409, "conflict")
	if secret := first.str("secret"); secret == "" || strings.Contains(string(again.body), secret) {
		t.Fatalf("the repeat: %s", again.body)
	}
	var body []byte
	var secretRow bool
	if err := a.db.QueryRow(`SELECT body, secret FROM idempotency_keys`).Scan(&body, &secretRow); err != nil || len(body) != 0 || !secretRow {
		t.Fatalf("the kept row: %q %v %v", body, secretRow, err)
	}
}

// The stale-key janitor.
func TestStaleIdempotencyKeysAreSwept(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	for i := range 3 {
		expectStatus(t, a.do(keyedPost("/api/v1/items", token, fmt.Sprintf("sweep-key-%07d", i), map[string]any{"title": "x"})), 201)
	}
	a.clock.Advance(idempotencyTTL + time.Second)
	if err := a.deps.store.deleteStaleKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	var n int
	a.db.QueryRow(`SELECT count(*) FROM idempotency_keys`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d stale keys left", n)
	}
}

// A replay is a request like any other to the rate limits.
func TestIdempotentReplaysCountAgainstTheRateLimit(t *testing.T) {
	a := newTestApp(t, map[string]string{"RATE_LIMIT_API_REQUESTS": "4", "RATE_LIMIT_API_WINDOW": "1m"})
	a.register("ada@example.com", "password-123") // the auth budget, not the api one
	token := a.login("ada@example.com", "password-123")
	for i := range 4 {
		r := a.do(keyedPost("/api/v1/items", token, "limited-key-00001", map[string]any{"title": "Once"}))
		if r.status != 201 || (i > 0) != (r.header.Get("Idempotent-Replayed") == "true") {
			t.Fatalf("request %d: %d %v", i+1, r.status, r.header)
		}
	}
	expectProblem(t, a.do(keyedPost("/api/v1/items", token, "limited-key-00001", map[string]any{"title": "Once"})), 429, "rate_limited")
}
