package main

import (
	"net/http"
	"strings"
	"testing"
)

const testFrontend = "https://app.example.com"

// sessionCookieOf is the __Host-session cookie an answer sets, or nil.
func sessionCookieOf(r response) *http.Cookie {
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// cookieLogin signs in as a browser on the frontend does, and returns the
// session cookie's value.
func cookieLogin(t *testing.T, a *testApp, email, password string) string {
	t.Helper()
	r := a.do(req{method: "POST", path: "/api/v1/auth/login?session=cookie", body: map[string]any{"email": email, "password": password},
		header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": testFrontend}})
	expectStatus(t, r, http.StatusNoContent)
	c := sessionCookieOf(r)
	if c == nil {
		t.Fatalf("no session cookie: %v", r.header)
	}
	return c.Value
}

func withCookie(value string, more map[string]string) map[string]string {
	h := map[string]string{"Cookie": sessionCookie + "=" + value}
	for k, v := range more {
		h[k] = v
	}
	return h
}

// A browser session: the login answers no token, only a cookie script
// cannot read and other sites' pages do not send, which then authenticates
// every route; signing out clears it and ends the session.
func TestCookieSessionLifecycle(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": testFrontend, "SESSION_TTL": "12h"})
	a.register("ann@example.com", "password-123")

	r := a.do(req{method: "POST", path: "/api/v1/auth/login?session=cookie", body: map[string]any{"email": "ann@example.com", "password": "password-123"},
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	expectStatus(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Fatalf("a cookie login answered a body (the page would hold the token): %s", r.body)
	}
	c := sessionCookieOf(r)
	if c == nil {
		t.Fatalf("no %s cookie: %v", sessionCookie, r.header.Values("Set-Cookie"))
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 12*3600 || len(c.Value) != 43 {
		t.Fatalf("cookie attributes: %q", r.header.Get("Set-Cookie"))
	}

	// ?session takes one value, cookie; anything else is named.
	for _, q := range []string{"?session=", "?session=bearer", "?session=cookie&session=cookie", "?session=COOKIE"} {
		r := a.do(req{method: "POST", path: "/api/v1/auth/login" + q, body: map[string]any{"email": "ann@example.com", "password": "password-123"},
			header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
		expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
		if got := fieldErrors(r); len(got) != 1 || got[0] != "session" || sessionCookieOf(r) != nil {
			t.Fatalf("%s: fields %v, cookie %v", q, got, sessionCookieOf(r))
		}
	}

	me := a.do(req{method: "GET", path: "/api/v1/users/me", header: withCookie(c.Value, nil)})
	expectStatus(t, me, http.StatusOK)
	if me.str("email") != "ann@example.com" {
		t.Fatalf("the cookie's user: %s", me.body)
	}
	item := a.do(req{method: "POST", path: "/api/v1/items", body: map[string]any{"title": "by cookie"},
		header: withCookie(c.Value, map[string]string{"Sec-Fetch-Site": "same-origin"})})
	expectStatus(t, item, http.StatusCreated)
	list := a.do(req{method: "GET", path: "/api/v1/items", header: withCookie(c.Value, nil)})
	expectStatus(t, list, http.StatusOK)
	if list.json["count"] != float64(1) {
		t.Fatalf("items by cookie: %s", list.body)
	}

	// A bearer token wins over the cookie: an explicit header is the
	// caller's choice, and a bad one is not rescued by the cookie.
	expectProblem(t, a.do(req{method: "GET", path: "/api/v1/users/me", token: strings.Repeat("x", 43), header: withCookie(c.Value, nil)}), http.StatusUnauthorized, "unauthorized")
	// A cookie that cannot be a token, or a made-up one, is no session.
	for _, v := range []string{"", "short", strings.Repeat("A", 43), strings.Repeat("A", 4096)} {
		expectProblem(t, a.do(req{method: "GET", path: "/api/v1/users/me", header: withCookie(v, nil)}), http.StatusUnauthorized, "unauthorized")
	}

	out := a.do(req{method: "POST", path: "/api/v1/auth/logout", header: withCookie(c.Value, map[string]string{"Sec-Fetch-Site": "same-origin"})})
	expectStatus(t, out, http.StatusNoContent)
	cleared := sessionCookieOf(out)
	if cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" || !cleared.Secure || !cleared.HttpOnly {
		t.Fatalf("logout did not clear the cookie: %q", out.header.Values("Set-Cookie"))
	}
	expectProblem(t, a.do(req{method: "GET", path: "/api/v1/users/me", header: withCookie(c.Value, nil)}), http.StatusUnauthorized, "unauthorized")

	// A bearer client's logout sets no cookie, and its login is unchanged.
	token := a.login("ann@example.com", "password-123")
	bearerOut := a.do(req{method: "POST", path: "/api/v1/auth/logout", token: token})
	expectStatus(t, bearerOut, http.StatusNoContent)
	if got := bearerOut.header.Values("Set-Cookie"); len(got) != 0 {
		t.Fatalf("a bearer logout set a cookie: %q", got)
	}
	if a.logs.String() == "" || strings.Contains(a.logs.String(), c.Value) {
		t.Fatal("the session cookie's token reached the logs")
	}
}

// The second step of a two-factor login hands out the cookie the same way.
func TestCookieSessionAfterSecondFactor(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": testFrontend})
	_, token := a.signup("two@example.com")
	secret, _ := enrolMFA(t, a, token, "password-123")
	first := a.do(req{method: "POST", path: "/api/v1/auth/login?session=cookie", body: map[string]any{"email": "two@example.com", "password": "password-123"},
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	expectProblem(t, first, http.StatusUnauthorized, "mfa_required")
	if sessionCookieOf(first) != nil {
		t.Fatal("the password alone set a session cookie")
	}
	a.clock.Advance(30e9) // the enrolment spent this step's code
	bad := a.do(req{method: "POST", path: "/api/v1/auth/login/mfa?session=jar", body: map[string]any{"mfa_token": first.str("mfa_token"), "code": "000000"},
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	expectProblem(t, bad, http.StatusUnprocessableEntity, "validation_failed")
	r := a.do(req{method: "POST", path: "/api/v1/auth/login/mfa?session=cookie", body: map[string]any{"mfa_token": first.str("mfa_token"), "code": oathCode(t, secret, a.clock.Now())},
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	expectStatus(t, r, http.StatusNoContent)
	c := sessionCookieOf(r)
	if c == nil || len(r.body) != 0 {
		t.Fatalf("second step: cookie %v, body %s", c, r.body)
	}
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/users/me", header: withCookie(c.Value, nil)}), http.StatusOK)
}

// A change carried by the cookie must come from the frontend's own origin:
// another site's page, a sibling subdomain, or a client that says nothing
// of where it comes from is refused before anything is read or written.
func TestCookieChangesFromOtherSitesRefused(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": testFrontend})
	a.register("cat@example.com", "password-123")
	value := cookieLogin(t, a, "cat@example.com", "password-123")
	token := a.login("cat@example.com", "password-123")

	cases := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"same origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusCreated},
		{"typed by the person", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusCreated},
		{"old browser, the frontend's Origin", map[string]string{"Origin": testFrontend}, http.StatusCreated},
		{"another site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"a sibling subdomain", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://blog.example.com"}, http.StatusForbidden},
		{"cross-site, lying Origin", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": testFrontend}, http.StatusForbidden},
		{"old browser, another Origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"old browser, Origin null", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"frontend's host over http", map[string]string{"Origin": "http://app.example.com"}, http.StatusForbidden},
		{"says nothing", nil, http.StatusForbidden},
		{"unknown Sec-Fetch-Site", map[string]string{"Sec-Fetch-Site": "same-origin, cross-site"}, http.StatusForbidden},
	}
	created := 0
	for _, c := range cases {
		r := a.do(req{method: "POST", path: "/api/v1/items", body: map[string]any{"title": c.name}, header: withCookie(value, c.header)})
		if c.want == http.StatusForbidden {
			expectProblem(t, r, http.StatusForbidden, "csrf")
			if !strings.Contains(r.str("detail"), "another site") {
				t.Errorf("%s: detail %q", c.name, r.str("detail"))
			}
			continue
		}
		if r.status != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, r.status, c.want, r.body)
		}
		created++
	}
	// Every method that changes something, on routes of every kind.
	for _, r := range []req{
		{method: "PATCH", path: "/api/v1/users/me", body: map[string]any{"full_name": "Mallory was here"}},
		{method: "DELETE", path: "/api/v1/users/me"},
		{method: "POST", path: "/api/v1/users/me/password", body: map[string]any{"current_password": "password-123", "new_password": "mallorys-own-pass"}},
		{method: "DELETE", path: "/api/v1/users/me/sessions"},
		{method: "POST", path: "/api/v1/auth/logout"},
		{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "mallory@example.com", "password": "password-123"}},
	} {
		r.header = withCookie(value, map[string]string{"Sec-Fetch-Site": "cross-site"})
		expectProblem(t, a.do(r), http.StatusForbidden, "csrf")
	}

	// Nothing was written: the items, the account, the session.
	var items, users int
	a.db.QueryRow(`SELECT count(*) FROM items`).Scan(&items)
	a.db.QueryRow(`SELECT count(*) FROM users`).Scan(&users)
	if items != created || users != 1 {
		t.Fatalf("items=%d (want %d), users=%d (want 1)", items, created, users)
	}
	me := a.do(req{method: "GET", path: "/api/v1/users/me", header: withCookie(value, nil)})
	expectStatus(t, me, http.StatusOK)
	if me.json["full_name"] != nil {
		t.Fatalf("the profile changed: %s", me.body)
	}
	a.login("cat@example.com", "password-123") // the password did not change

	// A bearer token is not something another site's page can attach, so
	// a request carrying one is not held to the origin rule, cookie or not.
	r := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "api client"},
		header: withCookie(value, map[string]string{"Sec-Fetch-Site": "cross-site"})})
	expectStatus(t, r, http.StatusCreated)
	// Reads are not changes: a cross-site GET with the cookie answers (the
	// browser withholds the cookie there anyway: SameSite=Strict).
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/users/me", header: withCookie(value, map[string]string{"Sec-Fetch-Site": "cross-site"})}), http.StatusOK)
}

// A login that asks for a cookie from another site is refused before the
// limiters or the hasher see it: it cannot plant a session (login CSRF)
// nor spend the owner's budgets.
func TestCookieLoginFromOtherSitesRefused(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": testFrontend, "RATE_LIMIT_AUTH_REQUESTS": "3", "RATE_LIMIT_LOGIN_FAILURES": "1"})
	a.register("dee@example.com", "password-123")
	for i := 0; i < 5; i++ {
		r := a.do(req{method: "POST", path: "/api/v1/auth/login?session=cookie", body: map[string]any{"email": "dee@example.com", "password": "wrong-password"},
			header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}})
		expectProblem(t, r, http.StatusForbidden, "csrf")
		if sessionCookieOf(r) != nil || r.header.Get("RateLimit") != "" {
			t.Fatalf("a refused login set a cookie or was counted: %v", r.header)
		}
	}
	var sessions int
	a.db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&sessions)
	if sessions != 0 {
		t.Fatalf("%d sessions after refused logins", sessions)
	}
	// The budgets are whole: the per-IP budget of 3 (one spent registering)
	// still holds two logins
	// from the frontend (the password failure budget of 1 is unspent too,
	// or the right password would be refused), and then it is spent.
	cookieLogin(t, a, "dee@example.com", "password-123")
	cookieLogin(t, a, "dee@example.com", "password-123")
	third := a.do(req{method: "POST", path: "/api/v1/auth/login?session=cookie", body: map[string]any{"email": "dee@example.com", "password": "password-123"},
		header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	expectProblem(t, third, http.StatusTooManyRequests, "rate_limited")
}

// CORS stays credential-free: a listed origin may call the API with a
// bearer token, never with the cookie.
func TestCORSNeverAllowsCredentials(t *testing.T) {
	a := newTestApp(t, map[string]string{"FRONTEND_URL": testFrontend, "CORS_ALLOWED_ORIGINS": testFrontend})
	for _, r := range []req{
		{method: "OPTIONS", path: "/api/v1/auth/login", header: map[string]string{"Origin": testFrontend, "Access-Control-Request-Method": "POST"}},
		{method: "GET", path: "/api/v1/health/live", header: map[string]string{"Origin": testFrontend}},
	} {
		resp := a.do(r)
		if resp.header.Get("Access-Control-Allow-Origin") != testFrontend {
			t.Fatalf("%s: the listed origin is not allowed: %v", r.method, resp.header)
		}
		if got := resp.header.Get("Access-Control-Allow-Credentials"); got != "" {
			t.Fatalf("%s: Access-Control-Allow-Credentials=%q", r.method, got)
		}
	}
}
