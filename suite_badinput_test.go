package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEveryEndpointRejectsBadInput sends each endpoint that takes a body
// malformed, oversized, wrong-type and hostile input, and checks the answer
// is the right 4xx problem and that nothing was written. A POST or PATCH
// route of the route table that is neither here nor among those that take
// no body fails it.
func TestEveryEndpointRejectsBadInput(t *testing.T) {
	badInputSuite(t, newTestApp(t, map[string]string{"MAX_BODY_BYTES": "4096"}))
}

// badInputSuite runs the bad-input suite against a, whose MAX_BODY_BYTES
// is 4096: the service straight on PostgreSQL, or behind a transaction
// pooler (suite_pgbouncer_test.go).
func badInputSuite(t *testing.T, a *testApp) {
	_, su := a.superuser("root@example.com")
	userID, token := a.signup("u@example.com")
	item := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "keep me"}})
	itemPath := "/api/v1/items/" + item.str("id")
	passkeyID := newSoftAuthenticator(t, algES256).register(a, token, "u@example.com").str("id")

	endpoints := []struct {
		method, path, token string
		field               string // a string field, for the wrong-type case
	}{
		{"POST", "/api/v1/auth/register", "", "email"},
		{"POST", "/api/v1/auth/login", "", "password"},
		{"PATCH", "/api/v1/users/me", token, "full_name"},
		{"POST", "/api/v1/users/me/password", token, "new_password"},
		{"POST", "/api/v1/users", su, "email"},
		{"PATCH", "/api/v1/users/" + userID, su, "email"},
		{"POST", "/api/v1/items", token, "title"},
		{"PATCH", itemPath, token, "title"},
		{"POST", "/api/v1/auth/password-recovery", "", "email"},
		{"POST", "/api/v1/auth/password-reset", "", "token"},
		{"POST", "/api/v1/auth/verify-email", "", "token"},
		{"POST", "/api/v1/auth/verify-email/resend", "", "email"},
		{"POST", "/api/v1/auth/login/mfa", "", "mfa_token"},
		{"POST", "/api/v1/users/me/mfa/totp", token, "current_password"},
		{"POST", "/api/v1/users/me/mfa/totp/confirm", token, "code"},
		{"POST", "/api/v1/users/me/mfa/recovery-codes", token, "code"},
		{"DELETE", "/api/v1/users/me/mfa", token, "code"},
		{"DELETE", "/api/v1/users/me", token, "current_password"},
		{"POST", "/api/v1/auth/passkey", "", "credential"},
		{"POST", "/api/v1/users/me/passkeys/options", token, "current_password"},
		{"POST", "/api/v1/users/me/passkeys", token, "name"},
		{"PATCH", "/api/v1/users/me/passkeys/" + passkeyID, token, "name"},
		{"DELETE", "/api/v1/users/me/passkeys/" + passkeyID, token, "current_password"},
	}
	takesNoBody := map[string]bool{"POST /api/v1/auth/logout": true, "POST /api/v1/users/me/verify-email": true, "POST /api/v1/auth/passkey/options": true}
	covered := map[string]bool{}
	for _, e := range endpoints {
		path := strings.NewReplacer("/"+userID, "/{id}", "/"+item.str("id"), "/{id}", "/"+passkeyID, "/{id}").Replace(e.path)
		covered[e.method+" "+path] = true
	}
	for _, route := range routes(t) {
		if (strings.HasPrefix(route, "POST ") || strings.HasPrefix(route, "PATCH ")) && !covered[route] && !takesNoBody[route] {
			t.Errorf("route %q takes a body but is not in the bad-input suite", route)
		}
	}
	oversized := `{"x":"` + strings.Repeat("a", 5000) + `"}`
	for _, e := range endpoints {
		t.Run(e.method+" "+e.path, func(t *testing.T) {
			send := func(body any, ct string) response {
				return a.do(req{method: e.method, path: e.path, token: e.token, body: body, contentType: ct})
			}
			expectProblem(t, send(`{"`+e.field+`": "x",`, ""), http.StatusBadRequest, "bad_request")
			expectProblem(t, send(`{} {}`, ""), http.StatusBadRequest, "bad_request")
			// One JSON object, nothing else: null is not an empty object.
			for _, notObject := range []string{`"just a string"`, `null`, ` null `, `[]`, `[{}]`, `0`, `true`} {
				r := send(notObject, "")
				expectProblem(t, r, http.StatusBadRequest, "bad_request")
				if r.str("detail") != "The request body must be a JSON object." {
					t.Fatalf("%s: %s", notObject, r.body)
				}
			}
			expectProblem(t, send(oversized, ""), http.StatusRequestEntityTooLarge, "payload_too_large")
			expectProblem(t, send(`{"`+e.field+`": "x"}`, "text/plain"), http.StatusUnsupportedMediaType, "unsupported_media_type")
			r := send(`{"`+e.field+`": ["not", "a", "string"]}`, "")
			expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed")
			if f := fieldErrors(r); len(f) != 1 || f[0] != e.field {
				t.Fatalf("wrong-type fields %v, want [%s]", f, e.field)
			}
			expectProblem(t, send(`{"`+e.field+`": 1e400}`, ""), http.StatusUnprocessableEntity, "validation_failed")
			// Hostile: prototype-pollution and SQL-looking field names are unknown fields.
			expectProblem(t, send(`{"__proto__": {"is_superuser": true}}`, ""), http.StatusBadRequest, "bad_request")
			expectProblem(t, send(`{"is_superuser = true; --": 1}`, ""), http.StatusBadRequest, "bad_request")
			expectProblem(t, send(`{"`+e.field+`": "a\u0000b"}`, ""), http.StatusUnprocessableEntity, "validation_failed")
			expectProblem(t, send(strings.Repeat("[", 3000), ""), http.StatusBadRequest, "bad_request")
		})
	}

	// Nothing above changed anything, nor queued a mail beyond the setup's
	// (the signup's, the passkey's).
	var queued int
	a.db.QueryRow(`SELECT count(*) FROM mail_outbox WHERE kind NOT IN ('verify', 'passkey_added')`).Scan(&queued)
	if queued != 0 {
		t.Fatalf("bad input queued %d outbox rows", queued)
	}
	me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token})
	if me.json["full_name"] != nil || me.str("email") != "u@example.com" || me.json["is_superuser"] != false {
		t.Fatalf("user changed by bad input: %s", me.body)
	}
	if got := a.do(req{method: "GET", path: itemPath, token: token}); got.str("title") != "keep me" {
		t.Fatalf("item changed by bad input: %s", got.body)
	}
	var users int
	a.db.QueryRow(`SELECT count(*) FROM users`).Scan(&users)
	if users != 2 {
		t.Fatalf("%d users, want 2", users)
	}
	a.login("u@example.com", "password-123") // the password did not change

	// Query strings and path ids of every shape.
	for _, q := range []string{"limit=1;DROP%20TABLE%20items", "limit=%00", "offset=1e2", "limit[]=1", "limit=-0x10"} {
		r := a.do(req{method: "GET", path: "/api/v1/items?" + q, token: token})
		if r.status != 422 && r.status != 200 {
			t.Fatalf("?%s: %d %s", q, r.status, r.body)
		}
	}
	// A scalar query parameter given twice is 422 naming it, whatever its
	// values: the second one is never left unchecked.
	for _, list := range []struct{ path, token string }{{"/api/v1/items", token}, {"/api/v1/users", su}, {"/api/v1/users/me/sessions", token}} {
		for _, q := range []string{"limit=5&limit=abc", "limit=5&limit=5", "offset=0&offset=-1", "cursor=a&cursor=b"} {
			r := a.do(req{method: "GET", path: list.path + "?" + q, token: list.token})
			expectProblem(t, r, 422, "validation_failed")
			if f := fieldErrors(r); len(f) != 1 || f[0] != q[:strings.IndexByte(q, '=')] {
				t.Fatalf("%s?%s: fields %v", list.path, q, f)
			}
		}
	}
	r := a.do(req{method: "POST", path: "/api/v1/auth/login?session=cookie&session=cookie", header: map[string]string{"Sec-Fetch-Site": "same-origin"}, body: map[string]any{"email": "u@example.com", "password": "password-123"}})
	if expectProblem(t, r, 422, "validation_failed"); fmt.Sprint(fieldErrors(r)) != "[session]" {
		t.Fatalf("?session twice: %s", r.body)
	}

	for _, id := range []string{"%27%3B--", "..%2F..%2Fetc", "00000000-0000-0000-0000-000000000000%00", strings.Repeat("f", 1000)} {
		expectProblem(t, a.do(req{method: "GET", path: "/api/v1/items/" + id, token: token}), 404, "not_found")
		expectProblem(t, a.do(req{method: "GET", path: "/api/v1/users/" + id, token: su}), 404, "not_found")
	}
}

func TestLoginFormOversized(t *testing.T) {
	a := newTestApp(t, map[string]string{"MAX_BODY_BYTES": "1024"})
	r := a.do(req{method: "POST", path: "/api/v1/auth/login", contentType: "application/x-www-form-urlencoded", body: "username=a%40b.co&password=" + strings.Repeat("x", 2000)})
	expectProblem(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
	r = a.do(req{method: "POST", path: "/api/v1/auth/login", contentType: "application/x-www-form-urlencoded", body: "username=%zz&password=x"})
	expectProblem(t, r, http.StatusBadRequest, "bad_request")
	// A field given twice: which one was meant cannot be guessed.
	r = a.do(req{method: "POST", path: "/api/v1/auth/login", contentType: "application/x-www-form-urlencoded", body: "username=a%40b.co&username=c%40d.co&password=password-123"})
	if expectProblem(t, r, http.StatusUnprocessableEntity, "validation_failed"); fmt.Sprint(fieldErrors(r)) != "[username]" {
		t.Fatalf("username twice: %s", r.body)
	}
}
