package main

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestSessionsListAndEnd(t *testing.T) {
	a := newTestApp(t, behindProxy(map[string]string{}))
	_, su := a.superuser("root@example.com")
	uid := a.register("me@example.com", "password-123")["id"].(string)
	login := func(ua, ip string) string {
		r := a.do(req{method: "POST", path: "/api/v1/auth/login", header: map[string]string{"User-Agent": ua, "X-Forwarded-For": ip},
			body: map[string]any{"email": "me@example.com", "password": "password-123"}})
		expectStatus(t, r, 200)
		a.clock.Advance(time.Second)
		return r.str("access_token")
	}
	laptop := login("Laptop/1.0", "203.0.113.5")
	phone := login("Phone/2.0", "2001:db8:1:2::7")
	tablet := login("Tablet/3.0", "198.51.100.9")
	me := func(tok string) int { return a.do(req{method: "GET", path: "/api/v1/users/me", token: tok}).status }

	r := a.do(req{method: "GET", path: "/api/v1/users/me/sessions", token: phone})
	data := r.json["data"].([]any)
	if r.json["count"] != float64(3) || len(data) != 3 {
		t.Fatalf("sessions: %s", r.body)
	}
	first := data[0].(map[string]any)
	if first["user_agent"] != "Tablet/3.0" || first["client_ip"] != "198.51.100.9" || first["current"] != false {
		t.Fatalf("newest first, with where it came from: %v", first)
	}
	var phoneID, laptopID string
	for _, d := range data {
		s := d.(map[string]any)
		switch s["user_agent"] {
		case "Phone/2.0":
			phoneID = s["id"].(string)
			if s["current"] != true || s["client_ip"] != "2001:db8:1:2::/64" {
				t.Fatalf("the calling session: %v", s)
			}
		case "Laptop/1.0":
			laptopID = s["id"].(string)
		}
	}
	for _, secret := range []string{laptop, phone, tablet, base64.RawURLEncoding.EncodeToString(hashToken(laptop))} {
		if strings.Contains(string(r.body), secret) {
			t.Fatal("a token or its hash is in the session list")
		}
	}

	// End one session by id: it stops at once; someone else's id is 404.
	_, other := a.signup("other@example.com")
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/sessions/" + laptopID, token: other}), 404, "not_found")
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/sessions/not-a-uuid", token: phone}), 404, "not_found")
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/sessions/" + laptopID, token: phone}), 204)
	if me(laptop) != 401 || me(phone) != 200 {
		t.Fatal("ending one session by id")
	}
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/sessions/" + laptopID, token: phone}), 404, "not_found")

	// End all but the current one.
	laptop = login("Laptop/1.0", "203.0.113.5")
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/me/sessions", token: phone}), 204)
	if me(laptop) != 401 || me(tablet) != 401 || me(phone) != 200 {
		t.Fatal("ending the other sessions")
	}
	r = a.do(req{method: "GET", path: "/api/v1/users/me/sessions", token: phone})
	if r.json["count"] != float64(1) || r.json["data"].([]any)[0].(map[string]any)["id"] != phoneID {
		t.Fatalf("after ending the others: %s", r.body)
	}

	// A superuser ends them all; an unknown user is 404.
	expectStatus(t, a.do(req{method: "DELETE", path: "/api/v1/users/" + uid + "/sessions", token: su}), 204)
	if me(phone) != 401 {
		t.Fatal("the superuser's revocation left a session")
	}
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/users/00000000-0000-4000-8000-000000000000/sessions", token: su}), 404, "not_found")
	if got := a.logs.linesWith(t, "event", "session.revoked"); len(got) < 3 {
		t.Fatalf("session.revoked audit lines: %v", got)
	}
}

// An authenticated request is one read: last_used_at is written at most
// once a minute. The row's xmin changes exactly when it is written.
func TestLastUsedWrittenAtMostOnceAMinute(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("busy@example.com")
	xmin := func() string {
		var x string
		a.db.QueryRow(`SELECT xmin::text FROM sessions WHERE token_hash = $1`, hashToken(token)).Scan(&x)
		return x
	}
	before := xmin()
	for range 20 {
		a.clock.Advance(2 * time.Second)
		expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items", token: token}), 200)
	}
	if after := xmin(); after != before {
		t.Fatalf("40 seconds of requests wrote the session row (xmin %s -> %s)", before, after)
	}
	a.clock.Advance(time.Minute)
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items", token: token}), 200)
	var lastUsed time.Time
	a.db.QueryRow(`SELECT last_used_at FROM sessions WHERE token_hash = $1`, hashToken(token)).Scan(&lastUsed)
	if xmin() == before || !lastUsed.Equal(a.clock.Now().Truncate(time.Microsecond)) {
		t.Fatalf("after a minute last_used_at is %v, want %v", lastUsed, a.clock.Now())
	}
}
