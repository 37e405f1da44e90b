package main

import (
	"strings"
	"testing"
	"time"
)

// Each security event leaves one audit line naming the actor, the target,
// the client IP and the request id, and never a secret.
func TestAuditEvents(t *testing.T) {
	a := newTestApp(t, nil)
	suID, su := a.superuser("root@example.com")
	u := a.register("alice@example.com", "password-123")
	alice := u["id"].(string)
	token := a.login("alice@example.com", "password-123")
	second := a.login("alice@example.com", "password-123")
	a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "alice@example.com", "password": "wrong-password"}})
	a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "nobody@example.com", "password": "wrong-password"}})
	a.do(req{method: "POST", path: "/api/v1/users/me/password", token: token, body: map[string]any{"current_password": "password-123", "new_password": "password-456"}})
	a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, body: map[string]any{"email": "alice2@example.com", "current_password": "password-456"}})
	a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, body: map[string]any{"full_name": "Alice"}})
	a.do(req{method: "POST", path: "/api/v1/auth/logout", token: token})
	created := a.do(req{method: "POST", path: "/api/v1/users", token: su, body: map[string]any{"email": "bob@example.com", "password": "password-123"}})
	bob := created.str("id")
	a.login("bob@example.com", "password-123")
	a.do(req{method: "PATCH", path: "/api/v1/users/" + bob, token: su, body: map[string]any{"is_active": false, "full_name": "Bob"}})
	a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "bob@example.com", "password": "password-123"}})
	a.do(req{method: "DELETE", path: "/api/v1/users/" + bob, token: su})
	_ = second

	lines := a.logs.linesWith(t, "msg", "audit")
	find := func(event, actor, target string, extra ...string) map[string]any {
		t.Helper()
		for _, l := range lines {
			if l["event"] != event || l["actor_id"] != actor || l["target_id"] != target {
				continue
			}
			ok := true
			for i := 0; i < len(extra); i += 2 {
				if got := strings.Trim(strings.ReplaceAll(strings.ReplaceAll(toJSON(l[extra[i]]), `"`, ""), " ", ""), "[]"); got != extra[i+1] {
					ok = false
				}
			}
			if ok {
				if l["client_ip"] != "127.0.0.1" || l["request_id"] == nil || l["request_id"] == "" {
					t.Fatalf("%s lacks client_ip or request_id: %v", event, l)
				}
				return l
			}
		}
		t.Fatalf("no audit line %s actor=%q target=%q %v in:\n%v", event, actor, target, extra, lines)
		return nil
	}
	find("user.created", alice, alice)
	find("login.succeeded", alice, alice)
	find("login.failed", "", alice, "reason", "bad_password")
	find("login.failed", "", "", "reason", "unknown_email")
	find("password.changed", alice, alice)
	find("session.revoked", alice, alice, "reason", "password_changed", "count", "1")
	find("email.changed", alice, alice)
	find("user.updated", alice, alice, "fields", "full_name")
	find("logout", alice, alice)
	find("user.created", suID, bob)
	find("user.updated", suID, bob, "fields", "full_name,is_active")
	find("session.revoked", suID, bob, "reason", "admin_change", "count", "1")
	find("login.failed", "", bob, "reason", "inactive")
	find("user.deleted", suID, bob)
	for _, l := range lines {
		s := toJSON(l)
		for _, secret := range []string{"password-123", "password-456", token, second} {
			if strings.Contains(s, secret) {
				t.Fatalf("an audit line holds a secret: %s", s)
			}
		}
	}
}

// A flood of one event from one address is summarised, not logged line by
// line.
func TestAuditFloodIsSummarised(t *testing.T) {
	a := newTestApp(t, nil)
	for range 40 {
		a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "nobody@example.com", "password": "wrong-password"}})
	}
	if n := len(a.logs.linesWith(t, "event", "login.failed")); n != auditBurst {
		t.Fatalf("%d login.failed lines for a flood of 40, want %d and a summary", n, auditBurst)
	}
	a.clock.Advance(auditWindow + time.Second)
	a.deps.audit.sweep(t.Context())
	var summary map[string]any
	for _, l := range a.logs.linesWith(t, "event", "login.failed") {
		if l["summary"] == true {
			summary = l
		}
	}
	if summary == nil || summary["suppressed"] != float64(30) || summary["client_ip"] != "127.0.0.1" {
		t.Fatalf("summary line: %v", summary)
	}
}
