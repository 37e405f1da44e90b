package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestProblemDocuments(t *testing.T) {
	a := newTestApp(t, map[string]string{"MAX_BODY_BYTES": "1024"})
	_, token := a.signup("p@example.com")
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"unknown route", req{method: "GET", path: "/api/v1/nope"}, 404, "not_found"},
		{"wrong method", req{method: "PUT", path: "/api/v1/items"}, 405, "method_not_allowed"},
		{"malformed json", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":`}, 400, "bad_request"},
		{"syntax error", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title" "x"}`}, 400, "bad_request"},
		{"two values", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":"a"}{"title":"b"}`}, 400, "bad_request"},
		{"unknown field", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":"a","owner_id":"x"}`}, 400, "bad_request"},
		{"array body", req{method: "POST", path: "/api/v1/items", token: token, body: `[]`}, 400, "bad_request"},
		{"empty body", req{method: "POST", path: "/api/v1/items", token: token, body: ``}, 400, "bad_request"},
		{"too large", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":"` + strings.Repeat("a", 2000) + `"}`}, 413, "payload_too_large"},
		{"wrong content type", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":"a"}`, contentType: "text/plain"}, 415, "unsupported_media_type"},
		{"no content type", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":"a"}`, contentType: "-"}, 415, "unsupported_media_type"},
		{"wrong type", req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":5}`}, 422, "validation_failed"},
		{"no token", req{method: "GET", path: "/api/v1/items"}, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(tt.r)
			expectProblem(t, r, tt.status, tt.code)
		})
	}
	r := a.do(req{method: "DELETE", path: "/api/v1/items"})
	if got := r.header.Get("Allow"); got != "GET, HEAD, POST" {
		t.Fatalf("Allow=%q, want GET, HEAD, POST", got)
	}
	r = a.do(req{method: "GET", path: "/api/v1/items"})
	if r.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("401 without WWW-Authenticate: %v", r.header)
	}
	r = a.do(req{method: "POST", path: "/api/v1/items", token: token, body: `{"title":5}`})
	if f := fieldErrors(r); len(f) != 1 || f[0] != "title" {
		t.Fatalf("422 fields=%v, want [title]", f)
	}
	// The checks run in the contract's order: 415 before 413 before 400.
	r = a.do(req{method: "POST", path: "/api/v1/items", token: token, body: strings.Repeat("{", 5000), contentType: "text/plain"})
	expectProblem(t, r, 415, "unsupported_media_type")
	r = a.do(req{method: "POST", path: "/api/v1/items", token: token, body: strings.Repeat("{", 5000)})
	expectProblem(t, r, 413, "payload_too_large")
}

// A lost database is a 503 problem with nothing of the driver in it, and
// the log line with the same request_id has the cause.
func TestDatabaseDownIs503(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("d@example.com")
	a.db.Close() // every later query fails as a lost connection does
	r := a.do(req{method: "GET", path: "/api/v1/items", token: token})
	expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
	for _, leak := range []string{"sql", "pgx", "closed", "postgres", "database/"} {
		if strings.Contains(strings.ToLower(r.str("detail")), leak) {
			t.Fatalf("503 detail leaks %q: %s", leak, r.body)
		}
	}
	lines := a.logs.linesWith(t, "request_id", r.str("request_id"))
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || !strings.Contains(lines[0]["error"].(string), "closed") {
		t.Fatalf("log line for the 503 lacks the cause: %v", lines)
	}
}

// Connections killed under the pool (a database restart) never surface as a
// 500 with driver text: a request on a dead connection is a 503 problem, and
// the next one is served on a fresh connection.
func TestKilledConnectionsAreNot500(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("k@example.com")
	admin := sqlOpenAdmin(t)
	u, _ := url.Parse(a.dsn)
	name := strings.TrimPrefix(u.Path, "/")
	for i := range 3 {
		var killed int
		if err := admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed == 0 {
			t.Fatalf("round %d: no connection of the app's pool to kill", i)
		}
		r := a.do(req{method: "GET", path: "/api/v1/items", token: token})
		if r.status != 200 {
			expectProblem(t, r, 503, "unavailable")
		}
		expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items", token: token}), 200)
	}
}
