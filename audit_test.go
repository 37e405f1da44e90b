package main

import (
	"fmt"
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
	a.changeEmail(token, "alice2@example.com", map[string]any{"current_password": "password-456"})
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
	find("email.change_requested", alice, alice)
	find("email.changed", alice, alice)
	find("email.verified", alice, alice)
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
	if summary == nil || summary["suppressed"] != float64(30) || summary["client_network"] != "127.0.0.1" {
		t.Fatalf("summary line: %v", summary)
	}
}

// A flood cannot blind the trail: with the table of counts full, another
// network's events are still written line by line, each naming its
// client, and no summary ever stands for two networks.
func TestAuditFullTableNeverMergesStrangers(t *testing.T) {
	a := newTestApp(t, behindProxy(map[string]string{}))
	a.deps.audit.maxKeys = 20
	from := func(ip string) {
		a.do(req{method: "POST", path: "/api/v1/auth/login", header: map[string]string{"X-Forwarded-For": ip},
			body: map[string]any{"email": "nobody@example.com", "password": "wrong-password"}})
	}
	for i := range 20 { // the flood fills the table, one key a network
		from(fmt.Sprintf("203.0.113.%d", i+1))
	}
	for range 15 { // a stranger beyond the table's room
		from("198.51.100.7")
	}
	var stranger int
	for _, l := range a.logs.linesWith(t, "event", "login.failed") {
		if l["client_ip"] == "198.51.100.7" && l["summary"] == nil {
			stranger++
		}
	}
	if stranger != 15 {
		t.Fatalf("%d of the stranger's 15 events were written, want every one", stranger)
	}
	a.clock.Advance(auditWindow + time.Second)
	from("198.51.100.7")
	for range 12 { // a tracked network's flood is summarised as before
		from("192.0.2.1")
	}
	a.clock.Advance(auditWindow + time.Second)
	a.deps.audit.sweep(t.Context())
	var summaries []map[string]any
	for _, l := range a.logs.linesWith(t, "event", "login.failed") {
		if l["summary"] == true {
			summaries = append(summaries, l)
		}
	}
	if len(summaries) != 1 || summaries[0]["client_network"] != "192.0.2.1" || summaries[0]["suppressed"] != float64(2) {
		t.Fatalf("summaries %v, want one for 192.0.2.1 standing for 2 lines", summaries)
	}
}
