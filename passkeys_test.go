package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Passkeys with real keys made in Go (softAuthenticator): ES256, RS256 and
// Ed25519 each register, then sign in with no email typed, as a bearer
// token and as the cookie session; the session says passkey and mfa; the
// list shows the passkey used; each step is audited and the addition mailed.
func TestPasskeyEachAlgorithm(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com"})
	for _, c := range []struct {
		name string
		alg  int
	}{{"ES256", algES256}, {"RS256", algRS256}, {"Ed25519", algEdDSA}} {
		t.Run(c.name, func(t *testing.T) {
			email := strings.ToLower(c.name) + "@example.com"
			_, token := a.signup(email)
			key := newSoftAuthenticator(t, c.alg)
			created := key.register(a, token, email)
			if created.str("name") != "Passkey" || created.json["backup_eligible"] != true || created.json["device"] != nil || created.json["last_used_at"] != nil {
				t.Fatalf("created %s", created.body)
			}
			signed := key.signIn(a)
			expectStatus(t, signed, 200)
			bearer := signed.str("access_token")
			sessions := a.do(req{method: "GET", path: "/api/v1/users/me/sessions", token: bearer})
			for _, s := range sessions.json["data"].([]any) {
				s := s.(map[string]any)
				if s["current"] == true && (s["method"] != "passkey" || s["mfa"] != true) {
					t.Fatalf("a passkey session: %v", s)
				}
			}
			cookie := key.at(a).assertion(key.challenge(a))
			r := a.do(req{method: "POST", path: "/api/v1/auth/passkey?session=cookie", header: map[string]string{"Sec-Fetch-Site": "same-origin"},
				body: map[string]any{"credential": cookie}})
			if r.status != 204 || !strings.HasPrefix(r.header.Get("Set-Cookie"), "__Host-session=") || len(r.body) != 0 {
				t.Fatalf("cookie sign-in: %d %v %s", r.status, r.header, r.body)
			}
			list := a.do(req{method: "GET", path: "/api/v1/users/me/passkeys", token: bearer})
			expectStatus(t, list, 200)
			data := list.json["data"].([]any)
			if list.json["count"] != float64(1) || len(data) != 1 || data[0].(map[string]any)["last_used_at"] == nil {
				t.Fatalf("list %s", list.body)
			}
		})
	}
	for _, event := range []string{"passkey.added", "passkey.used"} {
		if n := len(a.logs.linesWith(t, "event", event)); n < 3 {
			t.Errorf("%d %s events, want one per algorithm at least", n, event)
		}
	}
	mails := a.deliverMail()
	for _, who := range []string{"es256", "rs256", "ed25519"} {
		mailTo(t, mails, who+"@example.com", "A passkey was added to your account")
	}
	if strings.Contains(a.logs.String(), "\"level\":\"ERROR\"") {
		t.Fatalf("an error was logged:\n%s", a.logs)
	}
}

// Each way an assertion can be wrong is refused (401, the same words) and
// audited with its reason, and counts against the login budgets; the
// passkey still works afterwards.
func TestPasskeyRefusals(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com", "RATE_LIMIT_LOGIN_FAILURES": "100", "RATE_LIMIT_ACCOUNT_FAILURES": "100"})
	_, token := a.signup("owner@example.com")
	key := newSoftAuthenticator(t, algES256)
	key.register(a, token, "owner@example.com")
	_, otherToken := a.signup("other@example.com")
	other := newSoftAuthenticator(t, algEdDSA)
	other.register(a, otherToken, "other@example.com")

	send := func(assertion map[string]any) response {
		a.clock.Advance(auditWindow) // one minute each: no audit line is summarised away
		return a.do(req{method: "POST", path: "/api/v1/auth/passkey", body: map[string]any{"credential": assertion}})
	}
	refused := func(name, reason string, r response) {
		t.Helper()
		expectProblem(t, r, 401, "unauthorized")
		if r.str("detail") != "This passkey could not sign you in; try again, or sign in with your password." {
			t.Fatalf("%s: %s", name, r.body)
		}
		found := false
		for _, line := range a.logs.linesWith(t, "event", "passkey.failed") {
			found = found || strings.HasPrefix(fmt.Sprint(line["reason"]), reason)
		}
		if !found {
			t.Fatalf("%s: no passkey.failed event with reason %q", name, reason)
		}
	}

	t.Run("a replayed challenge", func(t *testing.T) {
		challenge := key.challenge(a)
		expectStatus(t, send(key.assertion(challenge)), 200)
		refused("replayed", "challenge", send(key.assertion(challenge)))
	})
	t.Run("an expired challenge", func(t *testing.T) {
		challenge := key.challenge(a)
		a.clock.Advance(webauthnChallengeTTL + time.Second)
		refused("expired", "challenge", send(key.assertion(challenge)))
	})
	t.Run("a challenge the service never gave", func(t *testing.T) {
		refused("made up", "challenge", send(key.assertion(b64([]byte("thirty-two bytes the service never gave")))))
	})
	t.Run("another origin", func(t *testing.T) {
		key.origin = "https://evil.example"
		defer func() { key.origin = "https://app.example.com" }()
		refused("origin", "ceremony", send(key.assertion(key.challenge(a))))
	})
	t.Run("another RP id", func(t *testing.T) {
		key.rpID = "example.com"
		defer func() { key.rpID = "app.example.com" }()
		refused("rpIdHash", "ceremony", send(key.assertion(key.challenge(a))))
	})
	t.Run("the wrong ceremony", func(t *testing.T) {
		key.tweak = func(cd map[string]any) { cd["type"] = "webauthn.create" }
		defer func() { key.tweak = nil }()
		refused("type", "ceremony", send(key.assertion(key.challenge(a))))
	})
	t.Run("inside another site's frame", func(t *testing.T) {
		key.tweak = func(cd map[string]any) { cd["crossOrigin"] = true }
		defer func() { key.tweak = nil }()
		refused("crossOrigin", "ceremony", send(key.assertion(key.challenge(a))))
	})
	t.Run("no user present", func(t *testing.T) {
		key.flags &^= flagUP
		defer func() { key.flags |= flagUP }()
		refused("UP", "ceremony", send(key.assertion(key.challenge(a))))
	})
	t.Run("a bad signature", func(t *testing.T) {
		as := key.assertion(key.challenge(a))
		as["response"].(map[string]any)["signature"] = other.assertion(key.challenge(a))["response"].(map[string]any)["signature"]
		refused("signature", "signature", send(as))
	})
	t.Run("a signature counter that does not grow", func(t *testing.T) {
		expectStatus(t, key.signIn(a), 200)
		key.count -= 2 // a clone, one step behind
		refused("counter", "sign_count", send(key.assertion(key.challenge(a))))
		key.count += 5
	})
	t.Run("a credential of another account", func(t *testing.T) {
		as := key.assertion(key.challenge(a))
		as["response"].(map[string]any)["userHandle"] = b64(other.handle)
		refused("userHandle", "another_account", send(as))
	})
	t.Run("no user handle", func(t *testing.T) {
		as := key.assertion(key.challenge(a))
		as["response"].(map[string]any)["userHandle"] = nil
		refused("no userHandle", "no_user_handle", send(as))
	})
	t.Run("an unknown credential", func(t *testing.T) {
		stranger := newSoftAuthenticator(t, algES256).at(a)
		stranger.handle = key.handle
		refused("unknown", "unknown_credential", send(stranger.assertion(key.challenge(a))))
	})
	t.Run("malformed authenticatorData", func(t *testing.T) {
		for _, bad := range []string{b64([]byte("short")), "not base64url!", ""} {
			as := key.assertion(key.challenge(a))
			as["response"].(map[string]any)["authenticatorData"] = bad
			refused("authData "+bad, "malformed", send(as))
		}
	})
	t.Run("malformed clientDataJSON", func(t *testing.T) {
		for _, bad := range []string{b64([]byte("{")), b64([]byte(`{"type":"webauthn.get"}`)), "%%%"} {
			as := key.assertion(key.challenge(a))
			as["response"].(map[string]any)["clientDataJSON"] = bad
			refused("clientDataJSON "+bad, "malformed", send(as))
		}
	})
	t.Run("not an assertion at all", func(t *testing.T) {
		for _, body := range []any{map[string]any{"credential": "a string"}, map[string]any{"credential": map[string]any{"response": 3}}, map[string]any{}} {
			r := a.do(req{method: "POST", path: "/api/v1/auth/passkey", body: body})
			expectProblem(t, r, 422, "validation_failed")
			if f := fieldErrors(r); len(f) != 1 || f[0] != "credential" {
				t.Fatalf("%v: %s", body, r.body)
			}
		}
	})
	// After all that, the owner's passkey still signs in.
	expectStatus(t, key.signIn(a), 200)
}

// User verification: an account with a second factor (or one MFA_REQUIRED
// covers) needs it; an account with none signs in without it, as one
// factor (mfa false). A user-verified passkey meets MFA_REQUIRED.
func TestPasskeyUserVerification(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com", "MFA_REQUIRED": "superusers"})
	_, token := a.signup("plain@example.com")
	key := newSoftAuthenticator(t, algES256)
	key.register(a, token, "plain@example.com")
	key.flags &^= flagUV
	r := key.signIn(a)
	expectStatus(t, r, 200)
	sessions := a.do(req{method: "GET", path: "/api/v1/users/me/sessions", token: r.str("access_token")})
	for _, s := range sessions.json["data"].([]any) {
		if s := s.(map[string]any); s["current"] == true && (s["mfa"] != false || s["method"] != "passkey") {
			t.Fatalf("a passkey without user verification is one factor: %v", s)
		}
	}

	// A superuser must have a second factor: the password session may only
	// enrol; a passkey is enrolled; signing in with it (verified) is both.
	_, su := a.superuser("root@example.com")
	expectProblem(t, a.do(req{method: "GET", path: "/api/v1/items", token: su}), 403, "mfa_enrollment_required")
	suKey := newSoftAuthenticator(t, algEdDSA)
	suKey.register(a, su, "root@example.com")
	suKey.flags &^= flagUV
	expectProblem(t, suKey.signIn(a), 401, "unauthorized")
	found := false
	for _, line := range a.logs.linesWith(t, "event", "passkey.failed") {
		found = found || line["reason"] == "user_not_verified"
	}
	if !found {
		t.Fatal("no passkey.failed event for the missing user verification")
	}
	suKey.flags |= flagUV
	signed := suKey.signIn(a)
	expectStatus(t, signed, 200)
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items", token: signed.str("access_token")}), 200)
}

// Registration: each way a registration response can be wrong is 422 on
// credential, audited; nothing is stored.
func TestPasskeyRegistrationRefusals(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com"})
	_, token := a.signup("reg@example.com")
	_, otherToken := a.signup("reg2@example.com")
	options := func(tok string) map[string]any {
		r := a.do(req{method: "POST", path: "/api/v1/users/me/passkeys/options", token: tok, body: map[string]any{"current_password": "password-123"}})
		expectStatus(t, r, 200)
		return r.json
	}
	o := options(token)
	sel := o["authenticatorSelection"].(map[string]any)
	rp := o["rp"].(map[string]any)
	if rp["id"] != "app.example.com" || sel["residentKey"] != "required" || sel["userVerification"] != "preferred" || o["attestation"] != "none" ||
		len(o["pubKeyCredParams"].([]any)) != 3 || o["timeout"] != float64(300000) {
		t.Fatalf("options %v", o)
	}
	user := o["user"].(map[string]any)
	if handle, _ := unb64(user["id"].(string)); len(handle) != 32 || user["name"] != "reg@example.com" {
		t.Fatalf("user %v", user)
	}
	// Re-authentication first.
	expectProblem(t, a.do(req{method: "POST", path: "/api/v1/users/me/passkeys/options", token: token, body: map[string]any{"current_password": "wrong password"}}), 422, "validation_failed")

	post := func(tok string, cred map[string]any) response {
		return a.do(req{method: "POST", path: "/api/v1/users/me/passkeys", token: tok, body: map[string]any{"credential": cred}})
	}
	refused := func(name string, r response) {
		t.Helper()
		expectProblem(t, r, 422, "validation_failed")
		if f := fieldErrors(r); len(f) != 1 || f[0] != "credential" {
			t.Fatalf("%s: %s", name, r.body)
		}
	}
	for _, c := range []struct {
		name    string
		breakIt func(k *softAuthenticator, cred map[string]any)
	}{
		{"another origin", func(k *softAuthenticator, _ map[string]any) { k.origin = "https://evil.example" }},
		{"another RP id", func(k *softAuthenticator, _ map[string]any) { k.rpID = "example.org" }},
		{"no user present", func(k *softAuthenticator, _ map[string]any) { k.flags &^= flagUP }},
		{"an algorithm not offered", func(_ *softAuthenticator, cred map[string]any) {
			cred["response"].(map[string]any)["publicKeyAlgorithm"] = -35
		}},
		{"a key of another algorithm", func(_ *softAuthenticator, cred map[string]any) {
			cred["response"].(map[string]any)["publicKeyAlgorithm"] = algRS256
		}},
		{"a public key that is not SPKI", func(_ *softAuthenticator, cred map[string]any) {
			cred["response"].(map[string]any)["publicKey"] = b64([]byte("not a key"))
		}},
		{"rawId not the attested one", func(_ *softAuthenticator, cred map[string]any) { cred["rawId"] = b64([]byte("another id")) }},
		{"malformed authenticatorData", func(_ *softAuthenticator, cred map[string]any) {
			cred["response"].(map[string]any)["authenticatorData"] = b64(make([]byte, 40))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := newSoftAuthenticator(t, algES256).at(a)
			o := options(token)
			cred := k.registration(o)
			c.breakIt(k, cred)
			if k.origin != "https://app.example.com" || k.rpID != "app.example.com" || k.flags&flagUP == 0 {
				cred = k.registration(o) // the authenticator's own fields changed: answer again
			}
			refused(c.name, post(token, cred))
		})
	}
	t.Run("a challenge of another session", func(t *testing.T) {
		k := newSoftAuthenticator(t, algES256).at(a)
		refused("another session", post(otherToken, k.registration(options(token))))
	})
	t.Run("a spent challenge", func(t *testing.T) {
		k := newSoftAuthenticator(t, algES256).at(a)
		cred := k.registration(options(token))
		expectStatus(t, post(token, cred), 201)
		refused("spent", post(token, cred))
	})
	if n := len(a.logs.linesWith(t, "event", "passkey.failed")); n < 9 {
		t.Errorf("%d passkey.failed events for the refused registrations", n)
	}
	if list := a.do(req{method: "GET", path: "/api/v1/users/me/passkeys", token: token}); list.json["count"] != float64(1) {
		t.Fatalf("refused registrations stored something: %s", list.body)
	}
}

// Managing passkeys: rename, delete re-authenticated (with the password,
// or with a passkey in place of every factor), another's is 404, the last
// passkey of an account with no password stays; notices mailed.
func TestPasskeyManage(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com"})
	_, token := a.signup("keys@example.com")
	first := newSoftAuthenticator(t, algES256)
	id := first.register(a, token, "keys@example.com").str("id")
	second := newSoftAuthenticator(t, algEdDSA)
	secondID := second.register(a, token, "keys@example.com").str("id")
	_, stranger := a.signup("stranger@example.com")

	renamed := a.do(req{method: "PATCH", path: "/api/v1/users/me/passkeys/" + id, token: token, body: map[string]any{"name": "  My phone  "}})
	expectStatus(t, renamed, 200)
	if renamed.str("name") != "My phone" {
		t.Fatalf("renamed %s", renamed.body)
	}
	for _, bad := range []any{"", strings.Repeat("n", 65), "tab\there", 3} {
		expectProblem(t, a.do(req{method: "PATCH", path: "/api/v1/users/me/passkeys/" + id, token: token, body: map[string]any{"name": bad}}), 422, "validation_failed")
	}
	expectProblem(t, a.do(req{method: "PATCH", path: "/api/v1/users/me/passkeys/" + id, token: stranger, body: map[string]any{"name": "mine"}}), 404, "not_found")
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/passkeys/" + id, token: stranger, body: map[string]any{"current_password": "password-123"}}), 404, "not_found")

	// Delete needs every factor: a wrong password is 422 on it.
	r := a.do(req{method: "DELETE", path: "/api/v1/users/me/passkeys/" + id, token: token, body: map[string]any{"current_password": "wrong password"}})
	expectProblem(t, r, 422, "validation_failed")
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/passkeys/" + id, token: token, body: map[string]any{"current_password": "password-123"}}), 204)

	// A passkey with the user verified stands in for every factor.
	second.at(a)
	unverified := *second
	unverified.flags &^= flagUV
	r = a.do(req{method: "DELETE", path: "/api/v1/users/me/passkeys/" + secondID, token: token, body: map[string]any{"passkey": unverified.assertion(second.challenge(a))}})
	expectProblem(t, r, 422, "validation_failed")
	if f := fieldErrors(r); len(f) != 1 || f[0] != "passkey" {
		t.Fatalf("fields %v", f)
	}
	second.count = unverified.count
	r = a.do(req{method: "DELETE", path: "/api/v1/users/me/passkeys/" + secondID, token: token,
		body: map[string]any{"passkey": second.assertion(second.challenge(a)), "current_password": "password-123"}})
	expectProblem(t, r, 422, "validation_failed")

	// The last passkey of an account with no password stays.
	if _, err := a.db.Exec(`UPDATE users SET password_hash = '' WHERE email = 'keys@example.com'`); err != nil {
		t.Fatal(err)
	}
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/passkeys/" + secondID, token: token,
		body: map[string]any{"passkey": second.assertion(second.challenge(a))}}), 409, "conflict")
	if _, err := a.db.Exec(`UPDATE users SET password_hash = 'x' WHERE email = 'keys@example.com'`); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/passkeys/" + secondID, token: token,
		body: map[string]any{"passkey": second.assertion(second.challenge(a))}}), 204)
	if list := a.do(req{method: "GET", path: "/api/v1/users/me/passkeys", token: token}); list.json["count"] != float64(0) {
		t.Fatalf("list %s", list.body)
	}
	// A deleted passkey signs nobody in.
	expectProblem(t, second.signIn(a), 401, "unauthorized")
	mails := a.deliverMail()
	if n := len(mailsTo(mails, "keys@example.com", "A passkey was removed from your account")); n != 2 {
		t.Fatalf("%d removal notices, want 2", n)
	}
	if n := len(a.logs.linesWith(t, "event", "passkey.removed")); n != 2 {
		t.Fatalf("%d passkey.removed events, want 2", n)
	}
}

// No client can fill the challenges' table: one network holds at most
// maxLiveChallenges unanswered ones, and they expire.
func TestPasskeyChallengesAreBounded(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com", "TRUSTED_PROXIES": "127.0.0.1/32"})
	from := func(ip string) req {
		return req{method: "POST", path: "/api/v1/auth/passkey/options", header: map[string]string{"X-Forwarded-For": ip}}
	}
	for range maxLiveChallenges {
		expectStatus(t, a.do(from("198.51.100.7")), 200)
	}
	r := a.do(from("198.51.100.7"))
	expectProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("no Retry-After: %v", r.header)
	}
	expectStatus(t, a.do(from("198.51.100.8")), 200) // another network is not affected
	a.clock.Advance(webauthnChallengeTTL + time.Second)
	expectStatus(t, a.do(from("198.51.100.7")), 200)
}

// Passkeys need a domain: with FRONTEND_URL on an IP address (and no
// WEBAUTHN_RP_ID) the routes say so; in development the default
// FRONTEND_URL on 127.0.0.1 means localhost at the same port.
func TestPasskeyRelyingParty(t *testing.T) {
	for _, c := range []struct {
		env        map[string]string
		id, origin string
	}{
		{map[string]string{"FRONTEND_URL": "https://app.example.com"}, "app.example.com", "https://app.example.com"},
		{map[string]string{"FRONTEND_URL": "https://app.example.com:8443", "WEBAUTHN_RP_ID": "example.com"}, "example.com", "https://app.example.com:8443"},
		{map[string]string{"PORT": "8080"}, "localhost", "http://localhost:8080"},
		{map[string]string{"FRONTEND_URL": "https://203.0.113.9"}, "", ""},
	} {
		rp := relyingParty(devConfig(t, c.env))
		if rp.id != c.id || rp.origin != c.origin {
			t.Errorf("%v: rp %+v, want %s at %s", c.env, rp, c.id, c.origin)
		}
	}
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://203.0.113.9"})
	expectProblem(t, a.do(req{method: "POST", path: "/api/v1/auth/passkey/options"}), 409, "conflict")
}

// A dump of the database holds a passkey's public key and nothing of its
// private one (the authenticator keeps that), for each algorithm.
func TestDatabaseDumpHoldsPublicKeysOnly(t *testing.T) {
	pgDump := needTool(t, "pg_dump")
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com"})
	_, token := a.signup("dump@example.com")
	var keys []*softAuthenticator
	for _, alg := range []int{algES256, algRS256, algEdDSA} {
		k := newSoftAuthenticator(t, alg)
		k.register(a, token, "dump@example.com")
		keys = append(keys, k)
	}
	out, err := exec.Command(pgDump, "--data-only", a.dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	dump := string(out)
	for _, k := range keys {
		if !strings.Contains(dump, hexOf(k.spki)) {
			t.Fatalf("the dump lacks the public key of algorithm %d: the grep below would prove nothing", k.alg)
		}
		var secret []byte
		switch key := k.key.(type) {
		case *ecdsa.PrivateKey:
			secret = key.D.Bytes()
		case ed25519.PrivateKey:
			secret = key.Seed()
		case *rsa.PrivateKey:
			secret = key.D.Bytes()
		}
		if private, err := x509.MarshalPKCS8PrivateKey(k.key); err != nil || strings.Contains(dump, hexOf(private)) || strings.Contains(dump, hexOf(secret)) {
			t.Fatalf("the dump shows the private key of algorithm %d (%v)", k.alg, err)
		}
	}
}
