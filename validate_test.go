package main

import (
	"strings"
	"testing"
)

// The password and email rules are the same at every endpoint that takes
// them, and a refused body writes nothing.
func TestPasswordAndEmailRulesEverywhere(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("me@example.com")
	_, su := a.superuser("root@example.com")
	badPasswords := map[string]string{
		"NUL":       "password\x00123",
		"control":   "password\x07123",
		"newline":   "pass\nword123",
		"too short": "pässwör",
		"too long":  strings.Repeat("é", 129),
	}
	badEmails := map[string]string{
		"NFD":         "jose\u0301@example.com",
		"fullwidth":   "ｍe@example.com",
		"cyrillic":    "mе@example.com", // the e is U+0435
		"zero-width":  "m\u200be@example.com",
		"IDN unicode": "me@exämple.com",
		"no dot":      "me@localhost",
		"space":       "m e@example.com",
	}
	type endpoint struct {
		method, path, token, field string
		body                       func(v string) map[string]any
	}
	passwordEndpoints := []endpoint{
		{"POST", "/api/v1/auth/register", "", "password", func(v string) map[string]any { return map[string]any{"email": "new@example.com", "password": v} }},
		{"POST", "/api/v1/auth/login", "", "password", func(v string) map[string]any { return map[string]any{"email": "me@example.com", "password": v} }},
		{"POST", "/api/v1/users/me/password", token, "new_password", func(v string) map[string]any {
			return map[string]any{"current_password": "password-123", "new_password": v}
		}},
		{"POST", "/api/v1/users/me/password", token, "current_password", func(v string) map[string]any {
			return map[string]any{"current_password": v, "new_password": "password-456"}
		}},
		{"POST", "/api/v1/users", su, "password", func(v string) map[string]any { return map[string]any{"email": "new@example.com", "password": v} }},
	}
	emailEndpoints := []endpoint{
		{"POST", "/api/v1/auth/register", "", "email", func(v string) map[string]any { return map[string]any{"email": v, "password": "password-123"} }},
		{"POST", "/api/v1/auth/login", "", "email", func(v string) map[string]any { return map[string]any{"email": v, "password": "password-123"} }},
		{"PATCH", "/api/v1/users/me", token, "email", func(v string) map[string]any { return map[string]any{"email": v, "current_password": "password-123"} }},
		{"POST", "/api/v1/users", su, "email", func(v string) map[string]any { return map[string]any{"email": v, "password": "password-123"} }},
	}
	var users int
	a.db.QueryRow(`SELECT count(*) FROM users`).Scan(&users)
	run := func(eps []endpoint, values map[string]string) {
		for _, ep := range eps {
			for name, v := range values {
				r := a.do(req{method: ep.method, path: ep.path, token: ep.token, body: ep.body(v)})
				expectProblem(t, r, 422, "validation_failed")
				if f := fieldErrors(r); len(f) != 1 || f[0] != ep.field {
					t.Errorf("%s %s with a %s %s: fields %v", ep.method, ep.path, name, ep.field, f)
				}
			}
		}
	}
	run(passwordEndpoints, badPasswords)
	run(emailEndpoints, badEmails)
	var after int
	a.db.QueryRow(`SELECT count(*) FROM users`).Scan(&after)
	if after != users {
		t.Fatalf("refused bodies wrote %d users", after-users)
	}
	// What the rules accept once can always be used again.
	a.register("unicode@example.com", "pässwörd-☃-密码")
	a.login("UNICODE@example.com", "pässwörd-☃-密码")
}
