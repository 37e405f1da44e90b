package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// reauthRoutes are the changes account recovery relies on, each asked with
// re-authentication ra (current_password, and code when set): the request,
// and what the test reads to tell whether the change happened.
type reauthRoute struct {
	name    string
	request func(token string, ra map[string]any) req
	changed func(a *testApp, email string) bool
}

var reauthRoutes = []reauthRoute{
	{"PATCH /users/me (email)", func(token string, ra map[string]any) req {
		return req{method: "PATCH", path: "/api/v1/users/me", token: token, body: with(ra, "email", "moved@example.com")}
	}, func(a *testApp, email string) bool {
		var n int
		a.db.QueryRow(`SELECT count(*) FROM users WHERE pending_email = 'moved@example.com'`).Scan(&n)
		return n == 1
	}},
	{"POST /users/me/password", func(token string, ra map[string]any) req {
		return req{method: "POST", path: "/api/v1/users/me/password", token: token, body: with(ra, "new_password", "a-brand-new-passphrase")}
	}, func(a *testApp, email string) bool {
		var hash string
		a.db.QueryRow(`SELECT password_hash FROM users WHERE email = $1`, email).Scan(&hash)
		ok, _, _ := a.deps.hasher.verify(context.Background(), hashClaim{}, "a-brand-new-passphrase", hash)
		return ok
	}},
	{"DELETE /users/me", func(token string, ra map[string]any) req {
		return req{method: "DELETE", path: "/api/v1/users/me", token: token, body: ra}
	}, func(a *testApp, email string) bool {
		var n int
		a.db.QueryRow(`SELECT count(*) FROM users WHERE email = $1`, email).Scan(&n)
		return n == 0
	}},
	{"POST /users/me/mfa/recovery-codes", func(token string, ra map[string]any) req {
		return req{method: "POST", path: "/api/v1/users/me/mfa/recovery-codes", token: token, body: ra}
	}, func(a *testApp, email string) bool {
		var n int // the fixture's 10 codes are replaced: none of them is left
		a.db.QueryRow(`SELECT count(*) FROM mfa_recovery_codes c JOIN users u ON u.id = c.user_id WHERE u.email = $1 AND c.created_at < $2`, email, a.clock.Now().Add(-time.Second)).Scan(&n)
		return n == 0
	}},
	{"DELETE /users/me/mfa", func(token string, ra map[string]any) req {
		return req{method: "DELETE", path: "/api/v1/users/me/mfa", token: token, body: ra}
	}, func(a *testApp, email string) bool {
		var on bool
		a.db.QueryRow(`SELECT mfa_enabled FROM users WHERE email = $1`, email).Scan(&on)
		return !on
	}},
}

// with is m plus key: value, m left as it is.
func with(m map[string]any, key string, value any) map[string]any {
	out := map[string]any{key: value}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mfaAccount is a fresh account with MFA on: its email, session, TOTP
// secret and recovery codes. The clock then moves a step on, so the
// enrolment's code is not the current one.
func mfaAccount(t *testing.T, a *testApp, email string) (token, secret string, codes []string) {
	t.Helper()
	a.register(email, "password-123")
	token = a.login(email, "password-123")
	secret, codes = enrolMFA(t, a, token, "password-123")
	a.clock.Advance(30 * time.Second)
	return token, secret, codes
}

// Every change that account recovery relies on needs every factor the
// account has: with a session and the password but no code, a wrong code,
// or a code already used, nothing changes (422 on code, each counted as a
// failed login); a recovery code works, once, and is announced; a current
// TOTP code works.
func TestReauthenticationTakesEveryFactor(t *testing.T) {
	for _, route := range reauthRoutes {
		t.Run(route.name, func(t *testing.T) {
			a := newTestApp(t, nil)
			email := "owner@example.com"
			token, secret, codes := mfaAccount(t, a, email)
			a.deliverMail()
			failures := func() (n int) {
				a.db.QueryRow(`SELECT mfa_failures FROM users WHERE email = $1`, email).Scan(&n)
				return n
			}
			remaining := []string{}
			refused := func(ra map[string]any, why string) {
				t.Helper()
				r := a.do(route.request(token, ra))
				expectProblem(t, r, 422, "validation_failed")
				if fmt.Sprint(fieldErrors(r)) != "[code]" || !strings.Contains(string(r.body), why) {
					t.Fatalf("%v: %s, want 422 on code saying %q", ra, r.body, why)
				}
				if route.changed(a, email) {
					t.Fatalf("%v: the change was made", ra)
				}
				remaining = append(remaining, r.header.Get("RateLimit"))
			}
			refused(map[string]any{"current_password": "password-123"}, "is required")
			refused(map[string]any{"current_password": "password-123", "code": wrongCode(t, secret, a.clock.Now())}, "is not a code")
			if got := failures(); got != 2 {
				t.Fatalf("%d wrong codes in a row counted toward the ceiling, want 2", got)
			}
			// Each spent one of the login budget (10 per network).
			if !strings.HasPrefix(remaining[0], `"login";r=9;`) || !strings.HasPrefix(remaining[1], `"login";r=8;`) {
				t.Fatalf("the login budget after a missing and a wrong code: %q", remaining)
			}
			// A code already used: the step is spent by a sign-in first,
			// whose right code ends the streak.
			used := oathCode(t, secret, a.clock.Now())
			expectStatus(t, loginMFA(t, a, email, "password-123", used), 200)
			refused(map[string]any{"current_password": "password-123", "code": used}, "is not a code")
			if got := failures(); got != 1 {
				t.Fatalf("%d wrong codes in a row after a right one, want 1", got)
			}
			// A wrong password is refused before any code is looked at.
			r := a.do(route.request(token, map[string]any{"current_password": "not-my-password", "code": codes[0]}))
			if expectProblem(t, r, 422, "validation_failed"); fmt.Sprint(fieldErrors(r)) != "[current_password]" {
				t.Fatalf("a wrong password: %s", r.body)
			}
			var unused int
			a.db.QueryRow(`SELECT count(*) FROM mfa_recovery_codes WHERE used_at IS NULL`).Scan(&unused)
			if unused != 10 {
				t.Fatalf("a recovery code was spent behind a wrong password: %d left", unused)
			}
			// A recovery code: the change is made, the code spent and announced.
			r = a.do(route.request(token, map[string]any{"current_password": "password-123", "code": codes[1]}))
			if r.status >= 300 || !route.changed(a, email) {
				t.Fatalf("with a recovery code: %d %s", r.status, r.body)
			}
			mailTo(t, a.deliverMail(), email, "recovery code was used")
			if got := failures(); got != 0 {
				t.Fatalf("a right code left a streak of %d", got)
			}
			events := a.logs.linesWith(t, "event", "mfa.recovery_code_used")
			if len(events) != 1 {
				t.Fatalf("recovery code events: %v", events)
			}
		})
	}
}

// A current TOTP code re-authenticates as well; an account without a
// second factor needs the password alone.
func TestReauthenticationWithATOTPCode(t *testing.T) {
	a := newTestApp(t, nil)
	token, secret, _ := mfaAccount(t, a, "owner@example.com")
	r := a.do(req{method: "POST", path: "/api/v1/users/me/password", token: token,
		body: map[string]any{"current_password": "password-123", "code": oathCode(t, secret, a.clock.Now()), "new_password": "a-brand-new-passphrase"}})
	expectStatus(t, r, 204)
	_, plain := a.signup("plain@example.com")
	r = a.do(req{method: "PATCH", path: "/api/v1/users/me", token: plain, body: map[string]any{"email": "plain2@example.com", "current_password": "password-123"}})
	if r.status != 200 || r.str("pending_email") != "plain2@example.com" {
		t.Fatalf("without a second factor: %d %s", r.status, r.body)
	}
}

// wrongCode is a six-digit code that is not secret's at t, nor a step
// either side of it.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	valid := []string{oathCode(t, secret, at.Add(-30*time.Second)), oathCode(t, secret, at), oathCode(t, secret, at.Add(30*time.Second))}
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", (n*104729+7)%1_000_000)
		if !slices.Contains(valid, c) {
			return c
		}
	}
}

// mfaFixture is an account with a second factor, and an operator.
type mfaFixture struct {
	a                     *testApp
	token, secret, su, id string
}

// A login waiting for its second step dies with the password: an mfa_token
// taken before a change, a reset, an email change, MFA turned off or a
// deactivation is refused after it, even with the right code.
func TestMFATokenDiesWithThePassword(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, f mfaFixture)
	}{
		{"password change", func(t *testing.T, f mfaFixture) {
			expectStatus(t, f.a.do(req{method: "POST", path: "/api/v1/users/me/password", token: f.token,
				body: map[string]any{"current_password": "password-123", "code": oathCode(t, f.secret, f.a.clock.Now()), "new_password": "a-brand-new-passphrase"}}), 204)
		}},
		{"password reset", func(t *testing.T, f mfaFixture) {
			expectStatus(t, resetWith(f.a, resetLink(t, f.a, "owner@example.com"), "a-brand-new-passphrase"), 204)
		}},
		{"email change", func(t *testing.T, f mfaFixture) {
			f.a.changeEmail(f.token, "owner2@example.com", map[string]any{"current_password": "password-123", "code": oathCode(t, f.secret, f.a.clock.Now())})
		}},
		{"MFA turned off by an operator", func(t *testing.T, f mfaFixture) {
			expectStatus(t, f.a.do(req{method: "PATCH", path: "/api/v1/users/" + f.id, token: f.su, body: map[string]any{"mfa_enabled": false}}), 200)
		}},
		{"deactivation", func(t *testing.T, f mfaFixture) {
			expectStatus(t, f.a.do(req{method: "PATCH", path: "/api/v1/users/" + f.id, token: f.su, body: map[string]any{"is_active": false}}), 200)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newTestApp(t, nil)
			_, su := a.superuser("root@example.com")
			token, secret, _ := mfaAccount(t, a, "owner@example.com")
			id := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}).str("id")
			first := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "owner@example.com", "password": "password-123"}})
			expectProblem(t, first, 401, "mfa_required")
			c.change(t, mfaFixture{a: a, token: token, secret: secret, su: su, id: id})
			a.clock.Advance(30 * time.Second) // a step the change did not spend
			r := a.do(req{method: "POST", path: "/api/v1/auth/login/mfa", body: map[string]any{"mfa_token": first.str("mfa_token"), "code": oathCode(t, secret, a.clock.Now())}})
			expectProblem(t, r, 401, "unauthorized")
			if !strings.Contains(r.str("detail"), "sign in again") {
				t.Fatalf("the old sign-in: %s", r.body)
			}
			var left int
			a.db.QueryRow(`SELECT count(*) FROM mfa_challenges`).Scan(&left)
			if left != 0 {
				t.Fatalf("%d pending second steps outlived the change", left)
			}
		})
	}
}
