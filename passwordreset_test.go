package main

import (
	"net/http"
	"testing"
	"time"
)

// resetLink asks for a reset link for email and returns its token,
// an hour after the last one, so the per-account cap never interferes.
func resetLink(t *testing.T, a *testApp, email string) string {
	t.Helper()
	a.clock.Advance(mailCapWindow + time.Minute)
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-recovery", body: map[string]any{"email": email}}), 202)
	return tokenFrom(t, mailTo(t, a.deliverMail(), email, "Reset"), "/reset-password")
}

func resetWith(a *testApp, token, password string) response {
	return a.do(req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]any{"token": token, "new_password": password}})
}

// A mailed link dies with the state it was issued for: reset links with a
// password change, a reset, an email change, a deactivation, a deletion;
// verification links with an email change. A new link leaves the live ones
// valid.
func TestTokensDieWithTheirState(t *testing.T) {
	a := newTestApp(t, nil)
	a.superuser("root@example.com")
	alice := a.register("alice@example.com", "password-123")["id"].(string)
	verify := tokenFrom(t, mailTo(t, a.deliverMail(), "alice@example.com", "Confirm"), "/verify-email")
	// Each step waits out the mail caps' hour, past the idle timeout: it
	// signs in afresh.
	signIn := func(password string) string { return a.login("alice@example.com", password) }
	admin := func() string { return a.login("root@example.com", "password-123") }

	t.Run("password change", func(t *testing.T) {
		reset := resetLink(t, a, "alice@example.com")
		expectStatus(t, a.do(req{method: "POST", path: "/api/v1/users/me/password", token: signIn("password-123"),
			body: map[string]any{"current_password": "password-123", "new_password": "password-456"}}), 204)
		expectProblem(t, resetWith(a, reset, "attacker-chosen-1"), 400, "invalid_token")
	})
	t.Run("email change", func(t *testing.T) {
		reset := resetLink(t, a, "alice@example.com")
		token := signIn("password-456")
		a.changeEmail(token, "alice2@example.com", map[string]any{"current_password": "password-456"})
		expectProblem(t, resetWith(a, reset, "attacker-chosen-1"), 400, "invalid_token")
		expectProblem(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": verify}}), 400, "invalid_token")
		// Changed back, the old address's links stay dead.
		a.clock.Advance(mailCapWindow + time.Minute)
		token = a.login("alice2@example.com", "password-456")
		a.changeEmail(token, "alice@example.com", map[string]any{"current_password": "password-456"})
		expectProblem(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": verify}}), 400, "invalid_token")
		a.deliverMail()
	})
	t.Run("deactivation", func(t *testing.T) {
		reset := resetLink(t, a, "alice@example.com")
		su := admin()
		expectStatus(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + alice, token: su, body: map[string]any{"is_active": false}}), 200)
		expectStatus(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + alice, token: su, body: map[string]any{"is_active": true}}), 200)
		expectProblem(t, resetWith(a, reset, "attacker-chosen-1"), 400, "invalid_token")
	})
	t.Run("admin password reset", func(t *testing.T) {
		reset := resetLink(t, a, "alice@example.com")
		expectStatus(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + alice, token: admin(), body: map[string]any{"password": "set-by-admin-1"}}), 200)
		expectProblem(t, resetWith(a, reset, "attacker-chosen-1"), 400, "invalid_token")
	})
	t.Run("a reset voids the others, and a new link leaves the live ones valid", func(t *testing.T) {
		a.clock.Advance(mailCapWindow + time.Minute)
		for range 2 {
			expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-recovery", body: map[string]any{"email": "alice@example.com"}}), 202)
		}
		mails := a.deliverMail()
		if len(mails) != 2 {
			t.Fatalf("%d reset mails, want 2", len(mails))
		}
		first, second := tokenFrom(t, mails[0], "/reset-password"), tokenFrom(t, mails[1], "/reset-password")
		expectStatus(t, resetWith(a, first, "chosen-by-her-1"), 204) // the first link outlived the second's issue
		expectProblem(t, resetWith(a, second, "attacker-chosen-1"), 400, "invalid_token")
		a.login("alice@example.com", "chosen-by-her-1")
	})
	t.Run("deletion", func(t *testing.T) {
		reset := resetLink(t, a, "alice@example.com")
		expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/" + alice, token: admin()}), 204)
		expectProblem(t, resetWith(a, reset, "attacker-chosen-1"), 400, "invalid_token")
	})
	var live int
	a.db.QueryRow(`SELECT count(*) FROM account_tokens WHERE used_at IS NULL`).Scan(&live)
	if live != 0 {
		t.Fatalf("%d unused tokens outlived the account", live)
	}
}

// Nobody can squat an address under EMAIL_VERIFICATION=required: once the
// first link expires, the owner asks for a fresh one (the answer is the
// same for any address), and a completed reset verifies the email too.
func TestNoSquattingAnAddress(t *testing.T) {
	a := newTestApp(t, map[string]string{"EMAIL_VERIFICATION": "required"})
	a.register("bob@example.com", "password-123")
	expired := tokenFrom(t, mailTo(t, a.deliverMail(), "bob@example.com", "Confirm"), "/verify-email")
	a.clock.Advance(verifyTokenTTL + time.Hour)
	expectProblem(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": expired}}), 400, "invalid_token")
	login := func(email string) response {
		return a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": "password-123"}})
	}
	expectProblem(t, login("bob@example.com"), 403, "email_unverified")

	resend := func(email string) response {
		return a.do(req{method: "POST", path: "/api/v1/auth/verify-email/resend", body: map[string]any{"email": email}})
	}
	known, unknown := resend("Bob@Example.com"), resend("nobody@example.com")
	expectStatus(t, known, 202)
	expectStatus(t, unknown, 202)
	if string(known.body) != string(unknown.body) || known.str("detail") == "" {
		t.Fatalf("resend answers differ: %s / %s", known.body, unknown.body)
	}
	mails := a.deliverMail()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want one, to bob", len(mails))
	}
	fresh := tokenFrom(t, mailTo(t, mails, "bob@example.com", "Confirm"), "/verify-email")
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": fresh}}), 204)
	expectStatus(t, login("bob@example.com"), 200)
	expectStatus(t, resend("bob@example.com"), 202)
	if n := len(a.deliverMail()); n != 0 {
		t.Fatalf("a verified address was sent %d more links", n)
	}

	// A reset proves the mailbox: it verifies the email.
	a.register("carol@example.com", "password-123")
	a.deliverMail()
	expectProblem(t, login("carol@example.com"), 403, "email_unverified")
	reset := resetLink(t, a, "carol@example.com")
	expectStatus(t, resetWith(a, reset, "password-123"), 204)
	expectStatus(t, login("carol@example.com"), 200)
}

// The anonymous resend takes what the recovery takes: bad input is a 4xx
// problem and queues nothing.
func TestVerificationResendBadInput(t *testing.T) {
	a := newTestApp(t, nil)
	for _, c := range []struct {
		body   any
		status int
	}{
		{`{"email": "not-an-email"}`, 422},
		{`{"email": null}`, 422},
		{`{}`, 422},
		{`{"email": 12}`, 422},
		{`{"email": "a@b.co", "admin": true}`, 400},
		{`[]`, 400},
	} {
		r := a.do(req{method: "POST", path: "/api/v1/auth/verify-email/resend", body: c.body})
		if r.status != c.status {
			t.Fatalf("%v: %d, want %d", c.body, r.status, c.status)
		}
	}
	expectProblem(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email/resend", body: `{"email":"a@b.co"}`, contentType: "text/plain"}), http.StatusUnsupportedMediaType, "unsupported_media_type")
	var queued int
	a.db.QueryRow(`SELECT count(*) FROM mail_outbox`).Scan(&queued)
	if queued != 0 {
		t.Fatalf("bad input queued %d rows", queued)
	}
}

// An address cannot be squatted with an account that has a second factor:
// an attacker who moves their MFA account to a victim's unregistered
// address gets only a pending change, which the victim's registration
// voids; the victim signs up, verifies and signs in with their password
// alone, under either verification setting.
func TestNoSquattingWithASecondFactor(t *testing.T) {
	for _, verification := range []string{"optional", "required"} {
		t.Run(verification, func(t *testing.T) {
			a := newTestApp(t, map[string]string{"EMAIL_VERIFICATION": verification})
			a.register("attacker@example.com", "password-123")
			a.deliverMail()
			// (required: the attacker verified their own address first)
			link := func(to, subject string) string {
				return tokenFrom(t, mailTo(t, a.deliverMail(), to, subject), "/verify-email")
			}
			if verification == "required" {
				expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email/resend", body: map[string]any{"email": "attacker@example.com"}}), 202)
				expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": link("attacker@example.com", "Confirm")}}), 204)
			}
			token := a.login("attacker@example.com", "password-123")
			secret, _ := enrolMFA(t, a, token, "password-123")
			a.clock.Advance(30 * time.Second)
			r := a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token,
				body: map[string]any{"email": "victim@example.com", "current_password": "password-123", "code": oathCode(t, secret, a.clock.Now())}})
			if r.status != 200 || r.str("email") != "attacker@example.com" || r.str("pending_email") != "victim@example.com" {
				t.Fatalf("the move: %d %s", r.status, r.body)
			}
			squat := link("victim@example.com", "Confirm your new email")

			// The address's owner signs up: the address is free.
			reg := a.do(req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "victim@example.com", "password": "owner-of-this-inbox-9"}})
			expectStatus(t, reg, 201)
			expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": link("victim@example.com", "Confirm your email")}}), 204)
			login := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "victim@example.com", "password": "owner-of-this-inbox-9"}})
			expectStatus(t, login, 200)
			if me := a.do(req{method: "GET", path: "/api/v1/users/me", token: login.str("access_token")}); me.json["mfa_enabled"] != false || me.str("id") != reg.str("id") {
				t.Fatalf("the owner's account: %s", me.body)
			}
			// The attacker's link is void; their account keeps its own address.
			expectProblem(t, a.do(req{method: "POST", path: "/api/v1/auth/verify-email", body: map[string]any{"token": squat}}), 400, "invalid_token")
			if me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}); me.str("email") != "attacker@example.com" || me.json["pending_email"] != nil {
				t.Fatalf("the attacker's account: %s", me.body)
			}
		})
	}
}
