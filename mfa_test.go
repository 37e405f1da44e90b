package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// oathCode is the TOTP code of secret (base32) at t, by Debian's oathtool:
// an implementation that is not ours.
func oathCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	out, err := exec.Command(needTool(t, "oathtool"), "--totp", "-b", "--now", at.UTC().Format("2006-01-02 15:04:05 UTC"), secret).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// enrolMFA turns MFA on for the account of token, and returns the secret
// and the recovery codes. The confirming code spends the clock's step.
func enrolMFA(t *testing.T, a *testApp, token, password string) (secret string, codes []string) {
	t.Helper()
	start := a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp", token: token, body: map[string]any{"current_password": password}})
	expectStatus(t, start, 200)
	secret = start.str("secret")
	confirm := a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp/confirm", token: token, body: map[string]any{"code": oathCode(t, secret, a.clock.Now())}})
	expectStatus(t, confirm, 200)
	for _, c := range confirm.json["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	return secret, codes
}

// loginMFA signs in with the password, expects the mfa_required step, and
// answers it with code.
func loginMFA(t *testing.T, a *testApp, email, password, code string) response {
	t.Helper()
	first := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": password}})
	expectProblem(t, first, 401, "mfa_required")
	return a.do(req{method: "POST", path: "/api/v1/auth/login/mfa", body: map[string]any{"mfa_token": first.str("mfa_token"), "code": code}})
}

func metricsText(t *testing.T, a *testApp) string {
	t.Helper()
	var b bytes.Buffer
	if err := a.deps.metrics.write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The whole life of a second factor, with codes from oathtool: enrol,
// confirm, sign out, password then code, replay refused, a recovery code
// once, new codes, MFA off; each change mailed and audited.
func TestMFAEndToEnd(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": "https://app.example.com"})
	const email, password = "alice@example.com", "correct horse battery"
	a.register(email, password)
	token := a.login(email, password)

	status := func(enabled bool, left int) {
		t.Helper()
		r := a.do(req{method: "GET", path: "/api/v1/users/me/mfa", token: token})
		expectStatus(t, r, 200)
		if r.json["enabled"] != enabled || r.json["recovery_codes_left"] != float64(left) {
			t.Fatalf("GET /users/me/mfa %s, want enabled %v with %d codes left", r.body, enabled, left)
		}
	}
	status(false, 0)

	// Starting needs the password.
	r := a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp", token: token, body: map[string]any{"current_password": "wrong password"}})
	expectProblem(t, r, 422, "validation_failed")
	if f := fieldErrors(r); !slices.Equal(f, []string{"current_password"}) {
		t.Fatalf("fields %v", f)
	}
	start := a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp", token: token, body: map[string]any{"current_password": password}})
	expectStatus(t, start, 200)
	secret := start.str("secret")
	if len(secret) != 32 { // 160 bits in base32
		t.Fatalf("secret %q is not 160 bits", secret)
	}
	uri, err := url.Parse(start.str("otpauth_uri"))
	if err != nil || uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Path != "/app.example.com:alice@example.com" ||
		uri.Query().Get("secret") != secret || uri.Query().Get("issuer") != "app.example.com" || uri.Query().Get("digits") != "6" || uri.Query().Get("period") != "30" {
		t.Fatalf("otpauth URI %q", start.str("otpauth_uri"))
	}
	// Pending until confirmed: a wrong code leaves MFA off.
	now := a.clock.Now()
	wrong := "000000"
	if oathCode(t, secret, now) == wrong {
		wrong = "111111"
	}
	r = a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp/confirm", token: token, body: map[string]any{"code": wrong}})
	expectProblem(t, r, 422, "validation_failed")
	if me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}); me.json["mfa_enabled"] != false {
		t.Fatalf("MFA on before a code confirmed it: %s", me.body)
	}
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": password}}), 200)
	confirmCode := oathCode(t, secret, now)
	confirm := a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp/confirm", token: token, body: map[string]any{"code": confirmCode}})
	expectStatus(t, confirm, 200)
	var codes []string
	for _, c := range confirm.json["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
		t.Fatalf("recovery codes %v", codes)
	}
	if me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}); me.json["mfa_enabled"] != true {
		t.Fatalf("MFA off after confirming: %s", me.body)
	}
	expectProblem(t, a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp", token: token, body: map[string]any{"current_password": password}}), 409, "conflict")
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/logout", token: token}), 204)

	// The password alone is a step, not a session.
	first := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": password}})
	expectProblem(t, first, 401, "mfa_required")
	if first.str("mfa_token") == "" || first.str("access_token") != "" || first.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("mfa_required answer: %s %v", first.body, first.header)
	}
	mfa := func(mfaToken, code string) response {
		return a.do(req{method: "POST", path: "/api/v1/auth/login/mfa", body: map[string]any{"mfa_token": mfaToken, "code": code}})
	}
	// The code that confirmed the app is spent: its step is used.
	expectProblem(t, mfa(first.str("mfa_token"), confirmCode), 401, "unauthorized")
	a.clock.Advance(30 * time.Second)
	code := oathCode(t, secret, a.clock.Now())
	signedIn := mfa(first.str("mfa_token"), code)
	expectStatus(t, signedIn, 200)
	token = signedIn.str("access_token")
	list := a.do(req{method: "GET", path: "/api/v1/users/me/sessions", token: token})
	expectStatus(t, list, 200)
	for _, s := range list.json["data"].([]any) {
		s := s.(map[string]any)
		if s["current"] == true && s["mfa"] != true {
			t.Fatalf("the session made through a code does not say so: %v", s)
		}
	}
	// The mfa_token is spent; the code is spent (replay), on a new step too.
	expectProblem(t, mfa(first.str("mfa_token"), oathCode(t, secret, a.clock.Now().Add(30*time.Second))), 401, "unauthorized")
	second := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": password}})
	expectProblem(t, mfa(second.str("mfa_token"), code), 401, "unauthorized")

	// A recovery code works once, typed any way.
	expectStatus(t, mfa(second.str("mfa_token"), strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))), 200)
	expectProblem(t, loginMFA(t, a, email, password, codes[0]), 401, "unauthorized")
	status(true, 9)

	// New codes need the password and a code; the old ones die.
	a.clock.Advance(30 * time.Second)
	regen := a.do(req{method: "POST", path: "/api/v1/users/me/mfa/recovery-codes", token: token, body: map[string]any{"current_password": password, "code": wrong}})
	expectProblem(t, regen, 422, "validation_failed")
	if f := fieldErrors(regen); !slices.Equal(f, []string{"code"}) {
		t.Fatalf("fields %v", f)
	}
	regen = a.do(req{method: "POST", path: "/api/v1/users/me/mfa/recovery-codes", token: token, body: map[string]any{"current_password": password, "code": oathCode(t, secret, a.clock.Now())}})
	expectStatus(t, regen, 200)
	fresh := regen.json["recovery_codes"].([]any)
	if len(fresh) != 10 || slices.Contains(codes, fresh[0].(string)) {
		t.Fatalf("new codes %v", fresh)
	}
	expectProblem(t, loginMFA(t, a, email, password, codes[1]), 401, "unauthorized")
	status(true, 10)

	// A password reset leaves MFA on (ASVS 6.4.3).
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-recovery", body: map[string]any{"email": email}}), 202)
	mails := a.deliverMail()
	reset := mailTo(t, mails, email, "Reset your password")
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-reset", body: map[string]any{"token": tokenFrom(t, reset, "/reset-password"), "new_password": "a new long passphrase"}}), 204)
	a.clock.Advance(30 * time.Second)
	signedIn = loginMFA(t, a, email, "a new long passphrase", oathCode(t, secret, a.clock.Now()))
	expectStatus(t, signedIn, 200)
	token = signedIn.str("access_token")

	// Off needs the password and a code.
	a.clock.Advance(30 * time.Second)
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/mfa", token: token, body: map[string]any{"current_password": "a new long passphrase", "code": wrong}}), 422, "validation_failed")
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/mfa", token: token, body: map[string]any{"current_password": "a new long passphrase", "code": oathCode(t, secret, a.clock.Now())}}), 204)
	if me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}); me.json["mfa_enabled"] != false {
		t.Fatalf("MFA still on: %s", me.body)
	}
	status(false, 0)
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": "a new long passphrase"}}), 200)
	var rows int
	a.db.QueryRow(`SELECT (SELECT count(*) FROM mfa_totp) + (SELECT count(*) FROM mfa_recovery_codes)`).Scan(&rows)
	if rows != 0 {
		t.Fatalf("%d rows of the second factor left after turning it off", rows)
	}

	// Every change was mailed; nothing in a notice is a secret.
	mails = append(mails, a.deliverMail()...)
	for _, subject := range []string{"Two-factor sign-in was turned on", "A recovery code was used", "New recovery codes were made", "Two-factor sign-in was turned off"} {
		text, html := parts(t, mailTo(t, mails, email, subject))
		if strings.Contains(text+html, secret) || strings.Contains(text+html, codes[0]) || !strings.Contains(text, email) {
			t.Fatalf("the %q notice carries a secret, or not its address:\n%s", subject, text)
		}
	}
	// Audited, and counted.
	for _, event := range []string{"mfa.enabled", "mfa.failed", "mfa.recovery_code_used", "mfa.codes_regenerated", "mfa.disabled"} {
		if len(a.logs.linesWith(t, "event", event)) == 0 {
			t.Errorf("no audit event %s", event)
		}
	}
	m := metricsText(t, a)
	for _, want := range []string{`mfa_challenges_total{result="passed"} 3`, `mfa_challenges_total{result="failed"} 4`, `mfa_challenges_total{result="expired"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "mfa_"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// The mfa_token is bound to the client network that gave the password, and
// lives 5 minutes.
func TestMFATokenIsBoundAndShortLived(t *testing.T) {
	a := newTestApp(t, behindProxy(map[string]string{}))
	const email, password = "carol@example.com", "correct horse battery"
	a.register(email, password)
	secret, _ := enrolMFA(t, a, a.login(email, password), password)
	first := loginFrom(a, "198.51.100.7", email, password)
	expectProblem(t, first, 401, "mfa_required")
	a.clock.Advance(30 * time.Second)
	from := func(ip string) response {
		return a.do(req{method: "POST", path: "/api/v1/auth/login/mfa", header: map[string]string{"X-Forwarded-For": ip},
			body: map[string]any{"mfa_token": first.str("mfa_token"), "code": oathCode(t, secret, a.clock.Now())}})
	}
	expectProblem(t, from("203.0.113.9"), 401, "unauthorized")
	a.clock.Advance(mfaChallengeTTL)
	expectProblem(t, from("198.51.100.7"), 401, "unauthorized")
	// A fresh one, from the same network, in time, works.
	second := loginFrom(a, "198.51.100.7", email, password)
	r := a.do(req{method: "POST", path: "/api/v1/auth/login/mfa", header: map[string]string{"X-Forwarded-For": "198.51.100.7"},
		body: map[string]any{"mfa_token": second.str("mfa_token"), "code": oathCode(t, secret, a.clock.Now())}})
	expectStatus(t, r, 200)
}

// Wrong codes spend the login budgets, as wrong passwords do, across
// replicas sharing the postgres store: the code cannot be guessed past the
// limiter by spreading guesses over replicas.
func TestWrongCodesSpendTheLoginBudgetAcrossReplicas(t *testing.T) {
	db, dsn := migratedDB(t)
	env := func() map[string]string {
		// Replicas share SECRET_KEY, or one could not open the secret another sealed.
		return behindProxy(map[string]string{"RATE_LIMIT_STORE": "postgres", "RATE_LIMIT_LOGIN_FAILURES": "4", "SECRET_KEY": testSecretKey})
	}
	r1, r2 := newTestAppOn(t, db, dsn, env()), newTestAppOn(t, db, dsn, env())
	const email, password = "dave@example.com", "correct horse battery"
	r1.register(email, password)
	secret, _ := enrolMFA(t, r1, r1.login(email, password), password)
	first := loginFrom(r1, "198.51.100.7", email, password)
	expectProblem(t, first, 401, "mfa_required")
	guess := func(a *testApp, code string) response {
		return a.do(req{method: "POST", path: "/api/v1/auth/login/mfa", header: map[string]string{"X-Forwarded-For": "198.51.100.7"},
			body: map[string]any{"mfa_token": first.str("mfa_token"), "code": code}})
	}
	r2.clock.Advance(30 * time.Second)
	right := oathCode(t, secret, r2.clock.Now())
	for i, a := range []*testApp{r1, r2, r1, r2} {
		code := []string{"000001", "000002", "000003", "000004"}[i]
		if code == right {
			code = "999999"
		}
		expectProblem(t, guess(a, code), 401, "unauthorized")
	}
	// The fifth try, right or wrong, on either replica, is refused before
	// the code is looked at.
	refused := guess(r2, right)
	expectProblem(t, refused, 429, "rate_limited")
	if got := refused.header.Get("RateLimit-Policy"); !strings.Contains(got, `"login"`) {
		t.Fatalf("refused by %q, want the login policy", got)
	}
	expectProblem(t, guess(r1, right), 429, "rate_limited")
}

// A dump of the database holds neither the TOTP secret nor a recovery code.
func TestDatabaseDumpHoldsNoSecondFactor(t *testing.T) {
	pgDump := needTool(t, "pg_dump")
	a := newTestApp(t, nil)
	const email, password = "erin@example.com", "correct horse battery"
	a.register(email, password)
	secret, codes := enrolMFA(t, a, a.login(email, password), password)
	out, err := exec.Command(pgDump, "--data-only", a.dsn).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	dump := string(out)
	if !strings.Contains(dump, "mfa_totp") || !strings.Contains(dump, "mfa_recovery_codes") {
		t.Fatal("the dump lacks the tables: the grep below would prove nothing")
	}
	raw, _ := base32NoPad.DecodeString(secret)
	needles := []string{secret, strings.ToLower(secret), hexOf(raw)}
	for _, c := range codes {
		needles = append(needles, c, strings.ReplaceAll(c, "-", ""), hexOf([]byte(strings.ReplaceAll(c, "-", ""))))
	}
	for _, n := range needles {
		if strings.Contains(dump, n) {
			t.Fatalf("the dump shows %q", n)
		}
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// MFA_REQUIRED=superusers: a superuser without a second factor signs in,
// but may only enrol, read their account and log out until it is on.
func TestMFARequiredForSuperusers(t *testing.T) {
	a := newTestApp(t, map[string]string{"MFA_REQUIRED": "superusers"})
	_, su := a.superuser("root@example.com")
	_, bob := a.signup("bob@example.com")
	for _, r := range []req{
		{method: "GET", path: "/api/v1/users"},
		{method: "GET", path: "/api/v1/items"},
		{method: "POST", path: "/api/v1/items", body: map[string]any{"title": "x"}},
		{method: "GET", path: "/api/v1/users/me/sessions"},
		{method: "DELETE", path: "/api/v1/users/me/sessions"},
	} {
		r.token = su
		expectProblem(t, a.do(r), 403, "mfa_enrollment_required")
	}
	var n int
	a.db.QueryRow(`SELECT count(*) FROM items`).Scan(&n)
	if n != 0 {
		t.Fatal("a refused request wrote an item")
	}
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/users/me", token: su}), 200)
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items", token: bob}), 200) // not a superuser: not held
	enrolMFA(t, a, su, "password-123")
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/users", token: su}), 200)
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/logout", token: su}), 204)

	// Logout is open to an account held to enrolment.
	all := newTestApp(t, map[string]string{"MFA_REQUIRED": "all"})
	_, carol := all.signup("carol@example.com")
	expectProblem(t, all.do(req{method: "GET", path: "/api/v1/items", token: carol}), 403, "mfa_enrollment_required")
	expectStatus(t, all.do(req{method: "POST", path: "/api/v1/auth/logout", token: carol}), 204)
}

// An operator restores a user who lost both factors: mfa_enabled false on
// PATCH /users/{id}; every session ends, the user is told, the audit names
// the superuser. Never on oneself, never true.
func TestOperatorRestoresALostSecondFactor(t *testing.T) {
	a := newTestApp(t, nil)
	suID, su := a.superuser("root@example.com")
	const email, password = "frank@example.com", "correct horse battery"
	id := a.register(email, password)["id"].(string)
	token := a.login(email, password)
	enrolMFA(t, a, token, password)
	a.deliverMail()

	expectProblem(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: su, body: map[string]any{"mfa_enabled": true}}), 422, "validation_failed")
	expectProblem(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: su, body: map[string]any{"mfa_enabled": nil}}), 422, "validation_failed")
	expectProblem(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + suID, token: su, body: map[string]any{"mfa_enabled": false}}), 403, "forbidden")
	r := a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: su, body: map[string]any{"mfa_enabled": false}})
	expectStatus(t, r, 200)
	if r.json["mfa_enabled"] != false {
		t.Fatalf("still on: %s", r.body)
	}
	expectProblem(t, a.do(req{method: "GET", path: "/api/v1/users/me", token: token}), 401, "unauthorized")
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": password}}), 200)
	mailTo(t, a.deliverMail(), email, "Two-factor sign-in was turned off")
	found := false
	for _, l := range a.logs.linesWith(t, "event", "mfa.disabled") {
		found = found || (l["actor_id"] == suID && l["target_id"] == id)
	}
	if !found {
		t.Fatal("no mfa.disabled audit line naming the superuser")
	}
}

// Bad input to the MFA routes is a 422 naming the field, and writes nothing.
func TestMFABadInputWritesNothing(t *testing.T) {
	a := newTestApp(t, nil)
	const email, password = "gina@example.com", "correct horse battery"
	a.register(email, password)
	token := a.login(email, password)
	state := func() string {
		var s string
		a.db.QueryRow(`SELECT (SELECT count(*) FROM mfa_totp)::text || '/' || (SELECT count(*) FROM mfa_recovery_codes)::text || '/' ||
			(SELECT count(*) FROM mfa_challenges)::text || '/' || (SELECT bool_or(mfa_enabled)::text FROM users)`).Scan(&s)
		return s
	}
	before := state()
	for _, c := range []struct {
		path, method string
		body         any
		field        string
	}{
		{"/api/v1/users/me/mfa/totp", "POST", map[string]any{}, "current_password"},
		{"/api/v1/users/me/mfa/totp", "POST", map[string]any{"current_password": 12345678}, ""},
		{"/api/v1/users/me/mfa/totp/confirm", "POST", map[string]any{"code": "12345"}, "code"},
		{"/api/v1/users/me/mfa/totp/confirm", "POST", map[string]any{"code": "12345a"}, "code"},
		{"/api/v1/users/me/mfa/totp/confirm", "POST", map[string]any{"code": "<script>"}, "code"},
		{"/api/v1/users/me/mfa/totp/confirm", "POST", map[string]any{"code": strings.Repeat("1", 5000)}, "code"},
		{"/api/v1/users/me/mfa", "DELETE", map[string]any{"current_password": password, "code": "12345"}, "code"},
		{"/api/v1/users/me/mfa/recovery-codes", "POST", map[string]any{"code": "123456"}, "current_password"},
		{"/api/v1/auth/login/mfa", "POST", map[string]any{"mfa_token": "x", "code": "12 34 56"}, "code"},
		{"/api/v1/auth/login/mfa", "POST", map[string]any{"code": "123456"}, "mfa_token"},
		{"/api/v1/auth/login/mfa", "POST", map[string]any{"mfa_token": strings.Repeat("x", 200), "code": "123456"}, "mfa_token"},
	} {
		r := a.do(req{method: c.method, path: c.path, token: token, body: c.body})
		if c.field == "" {
			if r.status != 400 && r.status != 422 {
				t.Errorf("%s %v: %d", c.path, c.body, r.status)
			}
			continue
		}
		expectProblem(t, r, 422, "validation_failed")
		if f := fieldErrors(r); !slices.Contains(f, c.field) {
			t.Errorf("%s %v: fields %v, want %s", c.path, c.body, f, c.field)
		}
	}
	if after := state(); after != before {
		t.Fatalf("bad input wrote: %s -> %s", before, after)
	}
	// MFA is not on: turning it off or regenerating codes is a conflict.
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/mfa", token: token, body: map[string]any{"current_password": password, "code": "123456"}}), 409, "conflict")
	expectProblem(t, a.do(req{method: "POST", path: "/api/v1/users/me/mfa/totp/confirm", token: token, body: map[string]any{"code": "123456"}}), 409, "conflict")
}

// The ceiling on guessing: 100 wrong codes in a row, from 12 client
// networks (none past its own budget), lock the account's second step. The
// owner then gets 403 mfa_locked for the right password and the right code
// alike, from a network the account knows, until a password reset through
// the mailed link. The owner was told twice, through the real SMTP server:
// once that someone who knows the password is failing the code (at the
// fifth, not again within the hour), once that the account is locked.
func TestCodeGuessingHitsACeiling(t *testing.T) {
	smtp := startSMTP(t, freePort(t), t.TempDir())
	a := newTestApp(t, behindProxy(map[string]string{"FRONTEND_URL": "https://app.example.com"}))
	const email = "owner@example.com"
	a.register(email, "password-123")
	owner := map[string]string{"X-Forwarded-For": "198.51.100.7"}
	login := func(from map[string]string, password string) response {
		return a.do(req{method: "POST", path: "/api/v1/auth/login", header: from, body: map[string]any{"email": email, "password": password}})
	}
	second := func(from map[string]string, mfaToken, code string) response {
		return a.do(req{method: "POST", path: "/api/v1/auth/login/mfa", header: from, body: map[string]any{"mfa_token": mfaToken, "code": code}})
	}
	token := a.do(req{method: "POST", path: "/api/v1/auth/login", header: owner, body: map[string]any{"email": email, "password": "password-123"}}).str("access_token")
	secret, _ := enrolMFA(t, a, token, "password-123")
	a.clock.Advance(30 * time.Second)
	ownersStep := login(owner, "password-123").str("mfa_token") // the owner's sign-in, under way when the guessing starts

	failed := 0
	for network := 1; failed < mfaCeiling; network++ {
		from := map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", network)}
		step := login(from, "password-123")
		expectProblem(t, step, 401, "mfa_required")
		for range 9 { // within each network's budget of 10
			if failed == mfaCeiling {
				break
			}
			expectProblem(t, second(from, step.str("mfa_token"), wrongCode(t, secret, a.clock.Now())), 401, "unauthorized")
			failed++
		}
		if network == 12 && failed < mfaCeiling {
			t.Fatalf("12 networks made only %d wrong codes", failed)
		}
	}

	// Locked: the right code on the owner's own step, the right password
	// from the owner's known network, all 403 mfa_locked.
	a.clock.Advance(30 * time.Second)
	expectProblem(t, second(owner, ownersStep, oathCode(t, secret, a.clock.Now())), 403, "mfa_locked")
	expectProblem(t, login(owner, "password-123"), 403, "mfa_locked")
	expectProblem(t, login(owner, "wrong-password"), 401, "unauthorized") // the lock shows only to the password's holder
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/mfa", token: token, header: owner,
		body: map[string]any{"current_password": "password-123", "code": oathCode(t, secret, a.clock.Now())}}), 403, "mfa_locked")

	a.deliverMailVia(smtp.port)
	if n := countMail(t, smtp, email, "Someone who knows your password"); n != 1 {
		t.Fatalf("%d notices that someone is guessing, want 1 within the hour", n)
	}
	recoverLink(t, smtp.waitMail(t, email, "locked", 0))
	for _, event := range []string{"mfa.failed_streak", "mfa.locked"} {
		if n := len(a.logs.linesWith(t, "event", event)); n != 1 {
			t.Fatalf("%d %s events, want 1", n, event)
		}
	}
	if n := len(a.logs.linesWith(t, "event", "mfa.failed")); n != mfaCeiling {
		t.Fatalf("%d mfa.failed events, want %d", n, mfaCeiling)
	}

	// The mailed reset unlocks it, and the owner signs in with both factors.
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-recovery", header: owner, body: map[string]any{"email": email}}), 202)
	a.deliverMailVia(smtp.port)
	reset := tokenFrom(t, smtp.waitMail(t, email, "Reset", 0), "https://app.example.com/reset-password")
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/password-reset", header: owner, body: map[string]any{"token": reset, "new_password": "a-fresh-passphrase"}}), 204)
	a.clock.Advance(30 * time.Second)
	step := login(owner, "a-fresh-passphrase")
	expectProblem(t, step, 401, "mfa_required")
	expectStatus(t, second(owner, step.str("mfa_token"), oathCode(t, secret, a.clock.Now())), 200)
}
