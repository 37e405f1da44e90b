package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestItemValidation(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("i@example.com")
	long := strings.Repeat
	tests := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"title empty", map[string]any{"title": ""}, 422, "title"},
		{"title 1", map[string]any{"title": "a"}, 201, ""},
		{"title 255", map[string]any{"title": long("ü", 255)}, 201, ""},
		{"title 256", map[string]any{"title": long("a", 256)}, 422, "title"},
		{"title missing", map[string]any{"description": "d"}, 422, "title"},
		{"title null", map[string]any{"title": nil}, 422, "title"},
		{"title number", map[string]any{"title": 7}, 422, "title"},
		{"title object", map[string]any{"title": map[string]any{"$ne": ""}}, 422, "title"},
		{"description 10000", map[string]any{"title": "t", "description": long("d", 10000)}, 201, ""},
		{"description 10001", map[string]any{"title": "t", "description": long("d", 10001)}, 422, "description"},
		{"description null", map[string]any{"title": "t", "description": nil}, 201, ""},
		{"description bool", map[string]any{"title": "t", "description": true}, 422, "description"},
		{"NUL in title", map[string]any{"title": "a\x00b"}, 422, "title"},
		{"owner_id is not writable", map[string]any{"title": "t", "owner_id": "00000000-0000-4000-8000-000000000000"}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: tt.body})
			if r.status != tt.status {
				t.Fatalf("status=%d, want %d; body %s", r.status, tt.status, r.body)
			}
			if tt.status == 422 {
				if f := fieldErrors(r); len(f) != 1 || f[0] != tt.field {
					t.Fatalf("fields=%v, want [%s]", f, tt.field)
				}
			}
		})
	}
	var n int
	a.db.QueryRow(`SELECT count(*) FROM items`).Scan(&n)
	if n != 4 {
		t.Fatalf("%d items stored, want the 4 valid ones", n)
	}
}

func TestHostileInputIsStoredIntact(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("h@example.com")
	for _, s := range []string{
		"Robert'); DROP TABLE items;--",
		`" OR 1=1 --`,
		"<script>alert(1)</script>",
		"🙂 ünïcödé 漢字 עברית \u202e",
		`\u0000 not a NUL, a backslash`,
		"line\nbreak\ttab",
	} {
		r := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": s, "description": s}})
		expectStatus(t, r, 201)
		got := a.do(req{method: "GET", path: "/api/v1/items/" + r.str("id"), token: token})
		if got.str("title") != s || got.str("description") != s {
			t.Fatalf("stored %q, read back %q / %q", s, got.str("title"), got.str("description"))
		}
	}
	if got := a.do(req{method: "GET", path: "/api/v1/items", token: token}); got.json["count"] != float64(6) {
		t.Fatalf("items table damaged: %s", got.body)
	}
	// Full name and email fields take the same care.
	r := a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, body: map[string]any{"full_name": "Zoë O'Brien; DROP TABLE users"}})
	if r.status != 200 || r.str("full_name") != "Zoë O'Brien; DROP TABLE users" {
		t.Fatalf("full_name: %d %s", r.status, r.body)
	}
}

func TestItemPatchAndPages(t *testing.T) {
	a := newTestApp(t, nil)
	_, su := a.superuser("root@example.com")
	_, token := a.signup("pg@example.com")
	_, other := a.signup("pg2@example.com")
	var ids []string
	for i := range 25 {
		a.clock.Advance(1e9) // distinct created_at, so the order is checkable
		r := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": fmt.Sprintf("item %d", i), "description": "d"}})
		if r.header.Get("Location") != "/api/v1/items/"+r.str("id") {
			t.Fatalf("Location=%q", r.header.Get("Location"))
		}
		ids = append(ids, r.str("id"))
	}
	a.do(req{method: "POST", path: "/api/v1/items", token: other, body: map[string]any{"title": "not yours"}})

	first := a.do(req{method: "GET", path: "/api/v1/items", token: token})
	data := first.json["data"].([]any)
	if first.json["count"] != float64(25) || len(data) != 20 || data[0].(map[string]any)["id"] != ids[24] {
		t.Fatalf("first page: count=%v len=%d", first.json["count"], len(data))
	}
	last := a.do(req{method: "GET", path: "/api/v1/items?limit=10&offset=20", token: token})
	data = last.json["data"].([]any)
	if len(data) != 5 || data[4].(map[string]any)["id"] != ids[0] {
		t.Fatalf("last page: %d items", len(data))
	}
	past := a.do(req{method: "GET", path: "/api/v1/items?offset=1000", token: token})
	if past.json["count"] != float64(25) || len(past.json["data"].([]any)) != 0 {
		t.Fatalf("past the last page: %s", past.body)
	}
	all := a.do(req{method: "GET", path: "/api/v1/items?limit=100", token: su})
	if all.json["count"] != float64(26) {
		t.Fatalf("superuser sees %v items, want 26", all.json["count"])
	}
	// mine=true narrows a superuser's list to their own, count included;
	// everyone else's list is theirs either way. Anything else is 422.
	a.clock.Advance(1e9)
	mineItem := a.do(req{method: "POST", path: "/api/v1/items", token: su, body: map[string]any{"title": "the superuser's"}})
	for _, c := range []struct {
		who, query string
		count      int
		first      string
	}{
		{su, "?mine=true", 1, mineItem.str("id")},
		{su, "?mine=true&offset=0&limit=5", 1, mineItem.str("id")},
		{su, "?mine=false", 27, mineItem.str("id")},
		{token, "?mine=true", 25, ids[24]},
		{token, "?mine=false", 25, ids[24]},
	} {
		r := a.do(req{method: "GET", path: "/api/v1/items" + c.query, token: c.who})
		expectStatus(t, r, 200)
		if data := r.json["data"].([]any); r.json["count"] != float64(c.count) || len(data) == 0 || data[0].(map[string]any)["id"] != c.first {
			t.Fatalf("%s: %s", c.query, r.body)
		}
	}
	page1 := a.do(req{method: "GET", path: "/api/v1/items?mine=true&limit=1", token: token})
	page2 := a.do(req{method: "GET", path: "/api/v1/items?mine=true&limit=1&cursor=" + url.QueryEscape(page1.str("next_cursor")), token: token})
	if d := page2.json["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != ids[23] {
		t.Fatalf("mine's second page: %s", page2.body)
	}
	for _, bad := range []string{"?mine=yes", "?mine=", "?mine=TRUE", "?mine=true&mine=false", "?mine=1"} {
		r := a.do(req{method: "GET", path: "/api/v1/items" + bad, token: su})
		expectProblem(t, r, 422, "validation_failed")
		if f := fieldErrors(r); !slices.Equal(f, []string{"mine"}) {
			t.Fatalf("%s: fields %v", bad, f)
		}
	}
	// Every offset page is its slice of the whole list, for the owner and
	// for the superuser (whose list holds another user's item too), with a
	// next_cursor exactly when rows follow.
	for _, who := range []string{token, su} {
		var whole []string
		for _, it := range a.do(req{method: "GET", path: "/api/v1/items?limit=100", token: who}).json["data"].([]any) {
			whole = append(whole, it.(map[string]any)["id"].(string))
		}
		for offset := 0; offset <= len(whole)+1; offset++ {
			r := a.do(req{method: "GET", path: fmt.Sprintf("/api/v1/items?limit=4&offset=%d", offset), token: who})
			var got []string
			for _, it := range r.json["data"].([]any) {
				got = append(got, it.(map[string]any)["id"].(string))
			}
			want := whole[min(offset, len(whole)):min(offset+4, len(whole))]
			if !slices.Equal(got, want) || (r.json["next_cursor"] != nil) != (offset+4 < len(whole)) {
				t.Fatalf("offset %d of %d: got %v, want %v; next_cursor %v", offset, len(whole), got, want, r.json["next_cursor"])
			}
		}
	}
	users := a.do(req{method: "GET", path: "/api/v1/users?limit=1", token: su})
	if users.json["count"] != float64(3) || len(users.json["data"].([]any)) != 1 {
		t.Fatalf("users page: %s", users.body)
	}

	for _, tt := range []struct {
		query  string
		status int
		field  string
	}{
		{"limit=0", 422, "limit"}, {"limit=1", 200, ""}, {"limit=100", 200, ""}, {"limit=101", 422, "limit"},
		{"limit=abc", 422, "limit"}, {"limit=1e3", 422, "limit"}, {"limit=99999999999999999999", 422, "limit"},
		{"offset=-1", 422, "offset"}, {"offset=x", 422, "offset"}, {"offset=0", 200, ""}, {"offset=1000", 200, ""},
	} {
		r := a.do(req{method: "GET", path: "/api/v1/items?" + tt.query, token: token})
		if r.status != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.query, r.status, tt.status)
		}
		if tt.field != "" {
			if f := fieldErrors(r); len(f) != 1 || f[0] != tt.field {
				t.Fatalf("%s: fields %v", tt.query, f)
			}
		}
	}

	// PATCH changes only what it names; null clears the description.
	id := ids[3]
	a.clock.Advance(1e9)
	r := a.do(req{method: "PATCH", path: "/api/v1/items/" + id, token: token, body: map[string]any{"description": nil}})
	if r.status != 200 || r.json["description"] != nil || r.str("title") != "item 3" || r.str("updated_at") == r.str("created_at") {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	changed := r.str("updated_at")
	// A PATCH that changes nothing (or sets what is there) leaves updated_at.
	a.clock.Advance(1e9)
	for _, body := range []map[string]any{{}, {"title": "item 3"}, {"description": nil}, {"title": "item 3", "description": nil}} {
		r = a.do(req{method: "PATCH", path: "/api/v1/items/" + id, token: token, body: body})
		if r.status != 200 || r.str("updated_at") != changed {
			t.Fatalf("no-op patch %v moved updated_at from %s: %d %s", body, changed, r.status, r.body)
		}
	}
	r = a.do(req{method: "PATCH", path: "/api/v1/items/" + id, token: token, body: map[string]any{"description": "new"}})
	if r.status != 200 || r.str("updated_at") == changed {
		t.Fatalf("a real change kept updated_at %s: %s", changed, r.body)
	}
	r = a.do(req{method: "PATCH", path: "/api/v1/items/" + id, token: token, body: map[string]any{"title": nil}})
	expectProblem(t, r, 422, "validation_failed")
	if msg := r.json["errors"].([]any)[0].(map[string]any)["message"]; msg != "must not be null" {
		t.Fatalf("null title on PATCH says %q, want must not be null", msg)
	}
	r = a.do(req{method: "PATCH", path: "/api/v1/items/" + id, token: token, body: map[string]any{"title": ""}})
	expectProblem(t, r, 422, "validation_failed")
	// Validation comes before existence, per the contract's order.
	r = a.do(req{method: "PATCH", path: "/api/v1/items/not-a-uuid", token: token, body: map[string]any{"title": ""}})
	expectProblem(t, r, 422, "validation_failed")
	r = a.do(req{method: "PATCH", path: "/api/v1/items/not-a-uuid", token: token, body: map[string]any{"title": "ok"}})
	expectProblem(t, r, 404, "not_found")
	r = a.do(req{method: "PATCH", path: "/api/v1/items/" + id, token: su, body: map[string]any{"title": "by admin"}})
	if r.status != 200 || r.str("title") != "by admin" {
		t.Fatalf("superuser patch: %d %s", r.status, r.body)
	}
	// The email change path conflicts like registration.
	r = a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, body: map[string]any{"email": "PG2@example.com", "current_password": "password-123"}})
	expectProblem(t, r, 409, "conflict")
}

// GET /items, GET /items/{id} and GET /users/me/sessions find the session
// in the same statement as their own query, and answer as requireUser does
// everywhere else: 401 for a missing, unknown, idle, expired or ended
// session and for a deactivated user, before bad input is judged; an empty
// list is a page, someone else's item a 404.
func TestHotReadsAuthenticateThemselves(t *testing.T) {
	a := newTestApp(t, map[string]string{"SESSION_IDLE_TIMEOUT": "30m", "SESSION_TTL": "2h"})
	a.superuser("root@example.com")
	id, token := a.signup("lister@example.com")
	_, other := a.signup("other@example.com")
	unknown := strings.Repeat("A", 43)
	get := func(token, path string) response {
		return a.do(req{method: "GET", path: "/api/v1/items" + path, token: token})
	}
	sessions := func(token, query string) response {
		return a.do(req{method: "GET", path: "/api/v1/users/me/sessions" + query, token: token})
	}

	empty := get(token, "")
	if empty.status != 200 || empty.json["count"] != float64(0) || len(empty.json["data"].([]any)) != 0 {
		t.Fatalf("a user with no items: %d %s", empty.status, empty.body)
	}
	if got := a.logs.linesWith(t, "path", "/api/v1/items"); len(got) == 0 || got[len(got)-1]["user_id"] != id {
		t.Fatalf("the access line does not name the user: %v", got)
	}
	mine := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "mine", "description": nil}}).str("id")
	theirs := a.do(req{method: "POST", path: "/api/v1/items", token: other, body: map[string]any{"title": "theirs", "description": "d"}}).str("id")
	if r := get(token, "/"+mine); r.status != 200 || r.str("id") != mine || r.json["description"] != nil || r.str("owner_id") != id {
		t.Fatalf("own item: %d %s", r.status, r.body)
	}
	if r := get(token, "/"+strings.ToUpper(mine)); r.status != 200 || r.str("id") != mine {
		t.Fatalf("own item, id in capitals: %d %s", r.status, r.body)
	}
	if got := a.logs.linesWith(t, "path", "/api/v1/items/"+mine); len(got) == 0 || got[0]["user_id"] != id {
		t.Fatalf("the item's access line does not name the user: %v", got)
	}
	for _, c := range []struct {
		token, path string
		want        int
	}{
		{"", "", 401}, {"", "?limit=0", 401}, {unknown, "", 401}, {unknown, "?limit=0", 401}, {token, "?limit=0", 422},
		{"", "/" + mine, 401}, {unknown, "/" + mine, 401}, {"", "/not-a-uuid", 401}, {unknown, "/not-a-uuid", 401},
		{token, "/not-a-uuid", 404}, {token, "/" + theirs, 404}, {token, "/00000000-0000-0000-0000-000000000000", 404},
	} {
		if r := get(c.token, c.path); r.status != c.want {
			t.Fatalf("token %q, %s: %d, want %d", c.token, c.path, r.status, c.want)
		}
	}
	for _, c := range []struct {
		token, query string
		want         int
	}{
		{"", "", 401}, {unknown, "", 401}, {"", "?limit=0", 401}, {unknown, "?offset=-1", 401}, {token, "?limit=0", 422}, {token, "?offset=x", 422},
	} {
		if r := sessions(c.token, c.query); r.status != c.want {
			t.Fatalf("sessions, token %q, %s: %d, want %d", c.token, c.query, r.status, c.want)
		}
	}

	// The sessions page: the caller's own, newest first, the current one
	// marked, the total right on a page past the last.
	a.clock.Advance(time.Minute)
	second := a.login("lister@example.com", "password-123")
	page := sessions(second, "?limit=1")
	list, _ := page.json["data"].([]any)
	if page.status != 200 || page.json["count"] != float64(2) || len(list) != 1 || list[0].(map[string]any)["current"] != true {
		t.Fatalf("sessions page: %d %s", page.status, page.body)
	}
	older := sessions(second, "?limit=1&offset=1")
	if list, _ := older.json["data"].([]any); older.status != 200 || len(list) != 1 || list[0].(map[string]any)["current"] != false {
		t.Fatalf("the older session: %d %s", older.status, older.body)
	}
	if past := sessions(second, "?offset=5"); past.status != 200 || past.json["count"] != float64(2) || len(past.json["data"].([]any)) != 0 {
		t.Fatalf("past the last page: %d %s", past.status, past.body)
	}
	if got := a.logs.linesWith(t, "path", "/api/v1/users/me/sessions"); len(got) == 0 || got[len(got)-1]["user_id"] != id {
		t.Fatalf("the sessions access line does not name the user: %v", got)
	}
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/logout", token: second}), 204)

	refused := func(token string) {
		t.Helper()
		expectProblem(t, get(token, ""), 401, "unauthorized")
		expectProblem(t, get(token, "/"+mine), 401, "unauthorized")
		expectProblem(t, sessions(token, ""), 401, "unauthorized")
	}
	// Idle past the timeout, then expired past the TTL, each on its own login.
	a.clock.Advance(31 * time.Minute)
	refused(token)
	fresh := a.login("lister@example.com", "password-123")
	for range 5 { // used every 25 minutes: never idle, expired after 2h
		a.clock.Advance(25 * time.Minute)
		get(fresh, "")
	}
	refused(fresh)

	// Ended: the next request is refused, not served from anything kept.
	ended := a.login("lister@example.com", "password-123")
	expectStatus(t, get(ended, "/"+mine), 200)
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/logout", token: ended}), 204)
	refused(ended)

	// Deactivated: the session still exists, the user may not use it.
	live, su := a.login("lister@example.com", "password-123"), a.login("root@example.com", "password-123")
	expectStatus(t, get(su, "/"+mine), 200) // a superuser sees anyone's item
	expectStatus(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + id, token: su, body: map[string]any{"is_active": false}}), 200)
	refused(live)
}
