package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAuthorizationMatrix runs every route of the route table as
// anonymous, the owner (or the user themselves), another user and a
// superuser, each on fresh fixtures so destructive cells do not affect each
// other. A route missing from the matrix fails it.
func TestAuthorizationMatrix(t *testing.T) {
	authorizationMatrix(t, newTestApp(t, nil))
}

// authorizationMatrix runs the matrix against a: the service straight on
// PostgreSQL, or behind a transaction pooler (suite_pgbouncer_test.go).
func authorizationMatrix(t *testing.T, a *testApp) {
	_, suToken := a.superuser("root@example.com")
	var n atomic.Int64

	// Each path placeholder of a row is a thing the owner has; its creator
	// makes a fresh one for the owner's session and returns its id. A
	// resource owned by users adds one line here ({owner} is the owner).
	creators := map[string]func(ownerToken string) string{
		"{item}": func(token string) string {
			r := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "mine"}})
			expectStatus(t, r, 201)
			return r.str("id")
		},
		"{passkey}": func(token string) string {
			return newSoftAuthenticator(t, algES256).register(a, token, "").str("id")
		},
		"{session}": func(token string) string {
			sessions := a.do(req{method: "GET", path: "/api/v1/users/me/sessions", token: token})
			return sessions.json["data"].([]any)[0].(map[string]any)["id"].(string)
		},
	}
	type fixture struct {
		ownerToken, otherToken string
		ids                    map[string]string // by placeholder
	}
	fresh := func() fixture {
		i := n.Add(1)
		f := fixture{ids: map[string]string{}}
		f.ids["{owner}"], f.ownerToken = a.signup(fmt.Sprintf("owner%d@example.com", i))
		_, f.otherToken = a.signup(fmt.Sprintf("other%d@example.com", i))
		for placeholder, create := range creators {
			f.ids[placeholder] = create(f.ownerToken)
		}
		return f
	}
	placeholder := regexp.MustCompile(`\{[a-z]+\}`)

	const (
		anon = iota
		owner
		other
		super
	)
	actors := []string{"anonymous", "owner", "other user", "superuser"}
	fixed := func(body any) func(int64) any { return func(int64) any { return body } }
	rows := []struct {
		method, path string
		body         func(i int64) any
		want         [4]int
	}{
		{"GET", "/api/v1/health", nil, [4]int{200, 200, 200, 200}},
		{"GET", "/api/v1/health/live", nil, [4]int{200, 200, 200, 200}},
		{"GET", "/api/v1/openapi.json", nil, [4]int{200, 200, 200, 200}},
		{"GET", "/docs", nil, [4]int{200, 200, 200, 200}},
		{"POST", "/api/v1/auth/register", func(i int64) any {
			return map[string]any{"email": fmt.Sprintf("new%d@example.com", i), "password": "password-123"}
		}, [4]int{201, 201, 201, 201}},
		{"POST", "/api/v1/auth/login", fixed(map[string]any{"email": "root@example.com", "password": "password-123"}), [4]int{200, 200, 200, 200}},
		{"POST", "/api/v1/auth/password-recovery", fixed(map[string]any{"email": "someone@example.com"}), [4]int{202, 202, 202, 202}},
		{"POST", "/api/v1/auth/password-reset", fixed(map[string]any{"token": "not-a-live-token", "new_password": "password-456"}), [4]int{400, 400, 400, 400}},
		{"POST", "/api/v1/auth/verify-email", fixed(map[string]any{"token": "not-a-live-token"}), [4]int{400, 400, 400, 400}},
		{"POST", "/api/v1/auth/verify-email/resend", fixed(map[string]any{"email": "someone@example.com"}), [4]int{202, 202, 202, 202}},
		{"GET", "/api/v1/users/me", nil, [4]int{401, 200, 200, 200}},
		{"PATCH", "/api/v1/users/me", fixed(map[string]any{"full_name": "New Name"}), [4]int{401, 200, 200, 200}},
		{"POST", "/api/v1/users/me/password", fixed(map[string]any{"current_password": "password-123", "new_password": "password-456"}), [4]int{401, 204, 204, 204}},
		{"POST", "/api/v1/users/me/verify-email", nil, [4]int{401, 202, 202, 409}},
		{"DELETE", "/api/v1/users/me", fixed(map[string]any{"current_password": "password-123"}), [4]int{401, 204, 204, 403}},
		{"GET", "/api/v1/users", nil, [4]int{401, 403, 403, 200}},
		{"POST", "/api/v1/users", func(i int64) any {
			return map[string]any{"email": fmt.Sprintf("made%d@example.com", i), "password": "password-123"}
		}, [4]int{401, 403, 403, 201}},
		{"GET", "/api/v1/users/{owner}", nil, [4]int{401, 200, 404, 200}},
		{"PATCH", "/api/v1/users/{owner}", fixed(map[string]any{"full_name": "By Admin"}), [4]int{401, 403, 403, 200}},
		{"DELETE", "/api/v1/users/{owner}", nil, [4]int{401, 403, 403, 204}},
		{"GET", "/api/v1/items", nil, [4]int{401, 200, 200, 200}},
		{"GET", "/api/v1/items?limit=1&offset=0", nil, [4]int{401, 200, 200, 200}},
		{"GET", "/api/v1/users?limit=1", nil, [4]int{401, 403, 403, 200}},
		{"GET", "/api/v1/users/me/sessions?limit=1", nil, [4]int{401, 200, 200, 200}},
		{"POST", "/api/v1/items", fixed(map[string]any{"title": "t"}), [4]int{401, 201, 201, 201}},
		{"GET", "/api/v1/items/{item}", nil, [4]int{401, 200, 404, 200}},
		{"PATCH", "/api/v1/items/{item}", fixed(map[string]any{"title": "changed"}), [4]int{401, 200, 404, 200}},
		{"DELETE", "/api/v1/items/{item}", nil, [4]int{401, 204, 404, 204}},
		{"POST", "/api/v1/auth/logout", nil, [4]int{401, 204, 204, 204}},
		{"GET", "/api/v1/users/me/sessions", nil, [4]int{401, 200, 200, 200}},
		{"DELETE", "/api/v1/users/me/sessions/{session}", nil, [4]int{401, 204, 404, 404}},
		{"DELETE", "/api/v1/users/me/sessions", nil, [4]int{401, 204, 204, 204}},
		{"DELETE", "/api/v1/users/{owner}/sessions", nil, [4]int{401, 403, 403, 204}},
		// The second factor: each fixture starts without one.
		{"POST", "/api/v1/auth/login/mfa", fixed(map[string]any{"mfa_token": "not-a-live-token", "code": "123456"}), [4]int{401, 401, 401, 401}},
		{"POST", "/api/v1/users/me/mfa/totp", fixed(map[string]any{"current_password": "password-123"}), [4]int{401, 200, 200, 200}},
		{"POST", "/api/v1/users/me/mfa/totp/confirm", fixed(map[string]any{"code": "123456"}), [4]int{401, 409, 409, 409}},
		{"GET", "/api/v1/users/me/mfa", nil, [4]int{401, 200, 200, 200}},
		{"DELETE", "/api/v1/users/me/mfa", fixed(map[string]any{"current_password": "password-123", "code": "123456"}), [4]int{401, 409, 409, 409}},
		// Passkeys: each owner holds one ({passkey}).
		{"POST", "/api/v1/auth/passkey/options", nil, [4]int{200, 200, 200, 200}},
		{"POST", "/api/v1/auth/passkey", fixed(map[string]any{"credential": map[string]any{"rawId": "AAAA", "type": "public-key", "response": map[string]any{}}}), [4]int{401, 401, 401, 401}},
		{"POST", "/api/v1/users/me/passkeys/options", fixed(map[string]any{"current_password": "password-123"}), [4]int{401, 200, 200, 200}},
		{"POST", "/api/v1/users/me/passkeys", fixed(map[string]any{"credential": map[string]any{}}), [4]int{401, 422, 422, 422}},
		{"GET", "/api/v1/users/me/passkeys", nil, [4]int{401, 200, 200, 200}},
		{"PATCH", "/api/v1/users/me/passkeys/{passkey}", fixed(map[string]any{"name": "renamed"}), [4]int{401, 200, 404, 404}},
		{"DELETE", "/api/v1/users/me/passkeys/{passkey}", fixed(map[string]any{"current_password": "password-123"}), [4]int{401, 204, 404, 404}},
		{"POST", "/api/v1/users/me/mfa/recovery-codes", fixed(map[string]any{"current_password": "password-123", "code": "123456"}), [4]int{401, 409, 409, 409}},
	}
	covered := map[string]bool{}
	for _, row := range rows {
		path, _, _ := strings.Cut(row.path, "?")
		covered[row.method+" "+placeholder.ReplaceAllString(path, "{id}")] = true
	}
	for _, route := range routes(t) {
		if !covered[route] {
			t.Errorf("route %q has no row in the authorization matrix", route)
		}
	}
	for _, row := range rows {
		for actor, want := range row.want {
			t.Run(row.method+" "+row.path+" as "+actors[actor], func(t *testing.T) {
				f := fresh()
				path := placeholder.ReplaceAllStringFunc(row.path, func(p string) string {
					id, ok := f.ids[p]
					if !ok {
						t.Fatalf("%s: no creator for %s", row.path, p)
					}
					return id
				})
				token := map[int]string{anon: "", owner: f.ownerToken, other: f.otherToken, super: suToken}[actor]
				if actor == super && row.path == "/api/v1/auth/logout" {
					token = a.login("root@example.com", "password-123") // its own session to end
				}
				if actor == super && (strings.Contains(row.path, "password") || strings.Contains(row.path, "/me/mfa")) {
					// Change a second superuser's password or factor, not the shared one's.
					_, token = a.superuser(fmt.Sprintf("root%d@example.com", n.Add(1)))
				}
				r := req{method: row.method, path: path, token: token}
				if row.body != nil {
					r.body = row.body(n.Add(1))
				}
				resp := a.do(r)
				if resp.status != want {
					t.Fatalf("status=%d, want %d; body %s", resp.status, want, resp.body)
				}
				if want >= 400 {
					expectProblem(t, resp, want, map[int]string{400: "invalid_token", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "validation_failed"}[want])
				}
			})
		}
	}
}

func TestSuperuserKeepsTheirOwnPowers(t *testing.T) {
	a := newTestApp(t, nil)
	id, token := a.superuser("root@example.com")
	for _, r := range []req{
		{method: "DELETE", path: "/api/v1/users/" + id, token: token},
		{method: "PATCH", path: "/api/v1/users/" + id, token: token, body: map[string]any{"is_superuser": false}},
		{method: "PATCH", path: "/api/v1/users/" + id, token: token, body: map[string]any{"is_active": false}},
		{method: "DELETE", path: "/api/v1/users/me", token: token},
	} {
		expectProblem(t, a.do(r), http.StatusForbidden, "forbidden")
	}
	me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token})
	if me.json["is_superuser"] != true || me.json["is_active"] != true {
		t.Fatalf("superuser changed: %s", me.body)
	}
	// Harmless self-edits are fine.
	r := a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: token, body: map[string]any{"full_name": "Root", "is_superuser": true}})
	expectStatus(t, r, 200)
}

// Someone else's resources answer exactly like missing ones.
func TestExistenceDoesNotLeak(t *testing.T) {
	a := newTestApp(t, nil)
	_, ownerToken := a.signup("o@example.com")
	otherID, otherToken := a.signup("x@example.com")
	item := a.do(req{method: "POST", path: "/api/v1/items", token: ownerToken, body: map[string]any{"title": "t"}})
	missing := "00000000-0000-4000-8000-000000000000"
	for _, pair := range [][2]string{
		{"/api/v1/items/" + item.str("id"), "/api/v1/items/" + missing},
	} {
		theirs := a.do(req{method: "GET", path: pair[0], token: otherToken})
		none := a.do(req{method: "GET", path: pair[1], token: otherToken})
		if theirs.status != 404 || none.status != 404 || theirs.str("detail") != none.str("detail") {
			t.Fatalf("someone else's: %d %s; missing: %d %s", theirs.status, theirs.body, none.status, none.body)
		}
	}
	theirs := a.do(req{method: "GET", path: "/api/v1/users/" + otherID, token: ownerToken})
	none := a.do(req{method: "GET", path: "/api/v1/users/" + missing, token: ownerToken})
	if theirs.status != 404 || none.status != 404 || theirs.str("detail") != none.str("detail") {
		t.Fatalf("other user: %d %s; missing: %d %s", theirs.status, theirs.body, none.status, none.body)
	}
	for _, bad := range []string{"not-a-uuid", "1", "'%20OR%201=1--", "00000000-0000-4000-8000-00000000000g", strings.Repeat("a", 300)} {
		r := a.do(req{method: "GET", path: "/api/v1/items/" + bad, token: ownerToken})
		expectProblem(t, r, 404, "not_found")
		r = a.do(req{method: "DELETE", path: "/api/v1/users/" + bad, token: ownerToken})
		expectProblem(t, r, 403, "forbidden") // superuser-only: 403 before any lookup
	}
}
