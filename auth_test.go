package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRegisterValidation(t *testing.T) {
	a := newTestApp(t, nil)
	long := func(n int, s string) string { return strings.Repeat(s, n) }
	tests := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"password 7", map[string]any{"email": "p7@example.com", "password": long(7, "a")}, 422, "password"},
		{"password 8", map[string]any{"email": "p8@example.com", "password": long(8, "a")}, 201, ""},
		{"password 128", map[string]any{"email": "p128@example.com", "password": long(128, "a")}, 201, ""},
		{"password 129", map[string]any{"email": "p129@example.com", "password": long(129, "a")}, 422, "password"},
		{"password 8 characters of 2 bytes", map[string]any{"email": "pu8@example.com", "password": long(8, "é")}, 201, ""},
		{"password 128 characters of 4 bytes", map[string]any{"email": "pu128@example.com", "password": long(128, "🔑")}, 201, ""},
		{"password 7 characters of 4 bytes", map[string]any{"email": "pu7@example.com", "password": long(7, "🔑")}, 422, "password"},
		{"password null", map[string]any{"email": "pn@example.com", "password": nil}, 422, "password"},
		{"password missing", map[string]any{"email": "pm@example.com"}, 422, "password"},
		{"password a number", map[string]any{"email": "pn@example.com", "password": 12345678}, 422, "password"},
		{"email missing", map[string]any{"password": "password-123"}, 422, "email"},
		{"email no at", map[string]any{"email": "example.com", "password": "password-123"}, 422, "email"},
		{"email no dotted domain", map[string]any{"email": "a@localhost", "password": "password-123"}, 422, "email"},
		{"email display name", map[string]any{"email": "Bob <bob@example.com>", "password": "password-123"}, 422, "email"},
		{"email too long", map[string]any{"email": long(250, "a") + "@example.com", "password": "password-123"}, 422, "email"},
		{"email sql", map[string]any{"email": "x'; DROP TABLE users;--@example.com", "password": "password-123"}, 422, "email"},
		{"email array", map[string]any{"email": []string{"a@example.com"}, "password": "password-123"}, 422, "email"},
		{"full name 255", map[string]any{"email": "f255@example.com", "password": "password-123", "full_name": long(255, "ß")}, 201, ""},
		{"full name 256", map[string]any{"email": "f256@example.com", "password": "password-123", "full_name": long(256, "a")}, 422, "full_name"},
		{"full name null", map[string]any{"email": "fnull@example.com", "password": "password-123", "full_name": nil}, 201, ""},
		{"full name NUL", map[string]any{"email": "fnul@example.com", "password": "password-123", "full_name": "a\x00b"}, 422, "full_name"},
		{"is_superuser is not a register field", map[string]any{"email": "su@example.com", "password": "password-123", "is_superuser": true}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(req{method: "POST", path: "/api/v1/auth/register", body: tt.body})
			if r.status != tt.status {
				t.Fatalf("status=%d, want %d; body %s", r.status, tt.status, r.body)
			}
			if tt.status == 422 {
				if f := fieldErrors(r); len(f) != 1 || f[0] != tt.field {
					t.Fatalf("fields=%v, want [%s]", f, tt.field)
				}
			}
			if tt.status == 201 {
				if r.header.Get("Location") != "/api/v1/users/"+r.str("id") || r.json["is_superuser"] != false || r.json["is_active"] != true {
					t.Fatalf("created user: %v %s", r.header, r.body)
				}
			}
		})
	}
	// Every failing field is listed at once.
	r := a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "nope", "password": "short"}})
	if f := fieldErrors(r); len(f) != 2 {
		t.Fatalf("want both fields, got %v", f)
	}
}

func TestEmailsAreNormalisedAndUniqueAnyCase(t *testing.T) {
	a := newTestApp(t, nil)
	u := a.register("  Mixed.Case@Example.COM ", "password-123")
	if u["email"] != "mixed.case@example.com" {
		t.Fatalf("email stored as %q", u["email"])
	}
	r := a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "MIXED.case@example.com", "password": "password-123"}})
	expectProblem(t, r, http.StatusConflict, "conflict")
	a.login("MIXED.CASE@example.com", "password-123")
}

func TestConcurrentRegistrationsOfOneEmail(t *testing.T) {
	a := newTestApp(t, nil)
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = doRequestNoSpec(t, a.srv.URL, req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "race@example.com", "password": "password-123"}}).status
		})
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case 201:
			created++
		case 409:
		default:
			t.Fatalf("unexpected status %d among %v", s, statuses)
		}
	}
	if created != 1 {
		t.Fatalf("%d registrations succeeded, want exactly 1: %v", created, statuses)
	}
}

func TestLogin(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("user@example.com", "password-123")

	form := a.do(req{method: "POST", path: "/api/v1/auth/login", contentType: "application/x-www-form-urlencoded", body: "grant_type=password&username=User%40Example.com&password=password-123&scope="})
	expectStatus(t, form, 200)
	if form.str("token_type") != "bearer" || len(form.str("access_token")) != 43 || form.json["expires_in"] != float64(a.cfg.SessionTTL/time.Second) {
		t.Fatalf("token: %s", form.body)
	}

	wrong := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "user@example.com", "password": "password-999"}})
	unknown := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "ghost@example.com", "password": "password-123"}})
	expectProblem(t, wrong, 401, "unauthorized")
	expectProblem(t, unknown, 401, "unauthorized")
	if wrong.str("detail") != unknown.str("detail") {
		t.Fatalf("the two failures differ: %q vs %q", wrong.str("detail"), unknown.str("detail"))
	}

	for _, tt := range []struct {
		name, ct, body string
		status         int
	}{
		{"unknown form field", "application/x-www-form-urlencoded", "username=a%40b.co&password=x&admin=1", 400},
		{"other grant", "application/x-www-form-urlencoded", "grant_type=client_credentials&username=a%40b.co&password=x", 422},
		{"form without password", "application/x-www-form-urlencoded", "username=a%40b.co", 422},
		{"xml", "application/xml", "<login/>", 415},
		{"json missing password", "application/json", `{"email":"a@b.co"}`, 422},
		{"json unknown field", "application/json", `{"email":"a@b.co","password":"x","remember":true}`, 400},
		{"json malformed", "application/json", `{"email":`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(req{method: "POST", path: "/api/v1/auth/login", contentType: tt.ct, body: tt.body})
			if r.status != tt.status {
				t.Fatalf("status=%d, want %d: %s", r.status, tt.status, r.body)
			}
		})
	}
}

func TestSessionLifecycle(t *testing.T) {
	a := newTestApp(t, nil)
	_, admin := a.superuser("root@example.com")
	id, t1 := a.signup("s@example.com")
	t2 := a.login("s@example.com", "password-123")
	me := func(tok string) int { return a.do(req{method: "GET", path: "/api/v1/users/me", token: tok}).status }

	// Logout ends the presented token only.
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/logout", token: t1}), 204)
	if me(t1) != 401 || me(t2) != 200 {
		t.Fatalf("after logout: t1=%d t2=%d", me(t1), me(t2))
	}

	// A password change keeps the current session and ends the others.
	t3 := a.login("s@example.com", "password-123")
	r := a.do(req{method: "POST", path: "/api/v1/users/me/password", token: t2, body: map[string]any{"current_password": "wrong-pass", "new_password": "password-456"}})
	expectProblem(t, r, 422, "validation_failed")
	if f := fieldErrors(r); len(f) != 1 || f[0] != "current_password" {
		t.Fatalf("wrong current password fields: %v", f)
	}
	r = a.do(req{method: "POST", path: "/api/v1/users/me/password", token: t2, body: map[string]any{"current_password": "password-123", "new_password": "password-123"}})
	expectProblem(t, r, 422, "validation_failed")
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/users/me/password", token: t2, body: map[string]any{"current_password": "password-123", "new_password": "password-456"}}), 204)
	if me(t2) != 200 || me(t3) != 401 {
		t.Fatalf("after password change: current=%d other=%d", me(t2), me(t3))
	}
	a.login("s@example.com", "password-456")

	// An admin password reset ends every session.
	t4 := a.login("s@example.com", "password-456")
	expectStatus(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: admin, body: map[string]any{"password": "password-789"}}), 200)
	if me(t2) != 401 || me(t4) != 401 {
		t.Fatal("admin password reset left sessions alive")
	}

	// Deactivation ends every session, and login then answers 403.
	t5 := a.login("s@example.com", "password-789")
	expectStatus(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: admin, body: map[string]any{"is_active": false}}), 200)
	if me(t5) != 401 {
		t.Fatal("deactivation left a session alive")
	}
	r = a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "s@example.com", "password": "password-789"}})
	expectProblem(t, r, 403, "forbidden")
	r = a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "s@example.com", "password": "wrong-password"}})
	expectProblem(t, r, 401, "unauthorized") // a wrong password does not reveal the deactivation

	// Expiry follows SESSION_TTL (absolute) and SESSION_IDLE_TIMEOUT on the
	// injected clock: a session used every 29 minutes lives until its TTL;
	// one left alone for 31 minutes dies.
	expectStatus(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: admin, body: map[string]any{"is_active": true}}), 200)
	t6 := a.login("s@example.com", "password-789")
	idle := a.login("s@example.com", "password-789")
	for lived := time.Duration(0); lived+29*time.Minute < a.cfg.SessionTTL; lived += 29 * time.Minute {
		a.clock.Advance(29 * time.Minute)
		if me(t6) != 200 {
			t.Fatalf("a session in use died after %v", lived+29*time.Minute)
		}
		if lived == 0 && me(idle) != 200 {
			t.Fatal("29 idle minutes ended a session")
		}
	}
	if me(idle) != 401 {
		t.Fatal("a session idle for hours is alive")
	}
	a.clock.Advance(a.cfg.SessionTTL % (29 * time.Minute))
	if me(t6) != 401 {
		t.Fatal("session outlived SESSION_TTL")
	}
	if n, err := a.deps.store.deleteExpiredSessions(context.Background()); err != nil || n < 1 {
		t.Fatalf("expired sessions swept: %d, %v", n, err)
	}

	// Deleting the user ends their sessions and their items.
	t7 := a.login("s@example.com", "password-789")
	a.do(req{method: "POST", path: "/api/v1/items", token: t7, body: map[string]any{"title": "doomed"}})
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/me", token: t7, body: map[string]any{"current_password": "password-789"}}), 204)
	if me(t7) != 401 {
		t.Fatal("deleted user's session alive")
	}
	var items int
	a.db.QueryRow(`SELECT count(*) FROM items WHERE owner_id = $1`, id).Scan(&items)
	if items != 0 {
		t.Fatalf("%d items of a deleted user remain", items)
	}

	// Tokens that are not ours are refused without a lookup.
	for _, h := range []string{"Bearer", "Bearer " + strings.Repeat("x", 43), "Basic dXNlcjpwYXNz", "bearer", "Token " + t6} {
		r := a.do(req{method: "GET", path: "/api/v1/users/me", header: map[string]string{"Authorization": h}})
		expectProblem(t, r, 401, "unauthorized")
	}
}

func TestNoSecretsInResponsesLogsOrSessions(t *testing.T) {
	a := newTestApp(t, nil)
	const pw = "Very-Secret-Pw-1"
	reg := a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "sec@example.com", "password": pw}})
	token := a.login("sec@example.com", pw)
	a.do(req{method: "GET", path: "/api/v1/users/me", token: token})
	a.do(req{method: "POST", path: "/api/v1/users/me/password", token: token, body: map[string]any{"current_password": pw, "new_password": pw + "x"}})
	a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "sec@example.com", "password": "wrong-" + pw}})
	var hash string
	a.db.QueryRow(`SELECT password_hash FROM users WHERE email = 'sec@example.com'`).Scan(&hash)
	if !strings.HasPrefix(hash, "pbkdf2-sha256$") {
		t.Fatalf("stored hash %q", hash)
	}
	salt := strings.Split(hash, "$")[2]
	logs := a.logs.String()
	for _, secret := range []string{pw, token, hash, salt, "password_hash", "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
		if strings.Contains(string(reg.body), secret) {
			t.Errorf("response contains %q", secret)
		}
	}
	var stored []byte
	var rows int
	a.db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&rows)
	a.db.QueryRow(`SELECT token_hash FROM sessions LIMIT 1`).Scan(&stored)
	if rows == 0 || len(stored) != 32 || strings.Contains(string(stored), token) {
		t.Fatalf("sessions table holds %d rows, token_hash %x", rows, stored)
	}
	// The stored value does not log anyone in.
	r := a.do(req{method: "GET", path: "/api/v1/users/me", header: map[string]string{"Authorization": "Bearer " + base64.RawURLEncoding.EncodeToString(stored)}})
	expectProblem(t, r, 401, "unauthorized")
}
