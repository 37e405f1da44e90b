package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// withTag is r with one header set.
func withTag(r req, name, value string) req {
	r.header = map[string]string{name: value}
	return r
}

// An item's ETag is its version; If-None-Match with it is 304; PATCH and
// DELETE with a stale If-Match are 412 with the current ETag, and change
// nothing; checks come in the contract's order (422, 404, then 412).
func TestItemConditionalRequests(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	created := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "First", "description": "d"}})
	expectStatus(t, created, 201)
	path := "/api/v1/items/" + created.str("id")
	if created.header.Get("ETag") != `"1"` || created.json["version"] != float64(1) {
		t.Fatalf("a new item: ETag %q, version %v", created.header.Get("ETag"), created.json["version"])
	}
	get := req{method: "GET", path: path, token: token}
	for _, tag := range []string{`"1"`, `W/"1"`, `"9", "1"`, `*`} {
		r := a.do(withTag(get, "If-None-Match", tag))
		if r.status != 304 || len(r.body) != 0 || r.header.Get("ETag") != `"1"` {
			t.Fatalf("If-None-Match %s: %d %q %v", tag, r.status, r.body, r.header)
		}
	}
	if r := a.do(withTag(get, "If-None-Match", `"2"`)); r.status != 200 || r.header.Get("ETag") != `"1"` {
		t.Fatalf("If-None-Match of another version: %d", r.status)
	}

	patch := func(tag string, body map[string]any) response {
		return a.do(withTag(req{method: "PATCH", path: path, token: token, body: body}, "If-Match", tag))
	}
	r := patch(`"1"`, map[string]any{"title": "Second"})
	expectStatus(t, r, 200)
	if r.header.Get("ETag") != `"2"` || r.json["version"] != float64(2) {
		t.Fatalf("after a change: ETag %q", r.header.Get("ETag"))
	}
	// A PATCH that changes nothing keeps the version.
	if r := patch(`"2"`, map[string]any{"title": "Second"}); r.status != 200 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("a no-op PATCH: %d %q", r.status, r.header.Get("ETag"))
	}
	// Stale, weak, foreign or hostile tags never match.
	for _, tag := range []string{`"1"`, `W/"2"`, `2`, `"two"`, `"` + strings.Repeat("9", 40) + `"`, `"-1"`, `""`, ` , `} {
		r := patch(tag, map[string]any{"title": "Lost update"})
		expectProblem(t, r, 412, "precondition_failed")
		if r.header.Get("ETag") != `"2"` {
			t.Fatalf("412 for %s carries ETag %q, want the current one", tag, r.header.Get("ETag"))
		}
	}
	if now := a.do(get); now.str("title") != "Second" {
		t.Fatalf("a refused PATCH changed the item: %s", now.body)
	}
	// Validation first, then existence, then the precondition.
	expectProblem(t, patch(`"1"`, map[string]any{"title": ""}), 422, "validation_failed")
	expectProblem(t, a.do(withTag(req{method: "PATCH", path: "/api/v1/items/00000000-0000-4000-8000-000000000000", token: token, body: map[string]any{"title": "x"}}, "If-Match", `"1"`)), 404, "not_found")
	// Another user's item is 404 whatever the tag.
	a.register("eve@example.com", "password-123")
	eve := a.login("eve@example.com", "password-123")
	expectProblem(t, a.do(withTag(req{method: "PATCH", path: path, token: eve, body: map[string]any{"title": "x"}}, "If-Match", `"2"`)), 404, "not_found")
	expectProblem(t, a.do(withTag(req{method: "DELETE", path: path, token: eve}, "If-Match", "*")), 404, "not_found")

	// * matches whatever version is current.
	expectStatus(t, patch(`*`, map[string]any{"description": "star"}), 200)

	// DELETE: a stale tag is 412 and the row stays; the current one goes.
	del := func(tag string) response {
		return a.do(withTag(req{method: "DELETE", path: path, token: token}, "If-Match", tag))
	}
	expectProblem(t, del(`"2"`), 412, "precondition_failed")
	expectStatus(t, a.do(get), 200)
	expectStatus(t, del(`"3"`), 204)
	expectProblem(t, del(`"3"`), 404, "not_found")
}

// Two tabs save at once with the tag they both read: exactly one wins, the
// other is 412, and the winner's answer has the new ETag.
func TestConcurrentPatchesWithOneTag(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	created := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "Shared"}})
	path := a.srv.URL + "/api/v1/items/" + created.str("id")
	for round := range 10 {
		tag := a.do(req{method: "GET", path: "/api/v1/items/" + created.str("id"), token: token}).header.Get("ETag")
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		etags := make([]string, 2)
		start := make(chan struct{})
		for i, body := range []string{fmt.Sprintf(`{"title":"Tab one, round %d"}`, round), fmt.Sprintf(`{"description":"Tab two, round %d"}`, round)} {
			wg.Go(func() {
				hr, _ := http.NewRequest("PATCH", path, strings.NewReader(body))
				hr.Header.Set("Content-Type", "application/json")
				hr.Header.Set("Authorization", "Bearer "+token)
				hr.Header.Set("If-Match", tag)
				<-start
				resp, err := http.DefaultClient.Do(hr)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i], etags[i] = resp.StatusCode, resp.Header.Get("ETag")
			})
		}
		close(start)
		wg.Wait()
		ok, failed := 0, 0
		for i, s := range statuses {
			switch s {
			case 200:
				ok++
				if etags[i] == tag {
					t.Fatalf("round %d: the winner's ETag %s is the old one", round, etags[i])
				}
			case 412:
				failed++
			}
		}
		if ok != 1 || failed != 1 {
			t.Fatalf("round %d: statuses %v, want one 200 and one 412", round, statuses)
		}
	}
}

// Users: GET /users/me and /users/{id} are tagged; the profile's PATCH and
// an admin's PATCH and DELETE take If-Match; list entries carry version.
func TestUserConditionalRequests(t *testing.T) {
	a := newTestApp(t, nil)
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	me := a.do(req{method: "GET", path: "/api/v1/users/me", token: token})
	tag := me.header.Get("ETag")
	if tag != `"1"` {
		t.Fatalf("GET /users/me ETag %q", tag)
	}
	if r := a.do(withTag(req{method: "GET", path: "/api/v1/users/me", token: token}, "If-None-Match", tag)); r.status != 304 || len(r.body) != 0 {
		t.Fatalf("If-None-Match on /users/me: %d", r.status)
	}
	profile := func(tag, name string) response {
		return a.do(withTag(req{method: "PATCH", path: "/api/v1/users/me", token: token, body: map[string]any{"full_name": name}}, "If-Match", tag))
	}
	r := profile(tag, "Ada")
	expectStatus(t, r, 200)
	newTag := r.header.Get("ETag")
	if newTag == tag || r.json["version"] != float64(2) {
		t.Fatalf("after a profile change: ETag %q, version %v", newTag, r.json["version"])
	}
	stale := profile(tag, "Eve's edit")
	expectProblem(t, stale, 412, "precondition_failed")
	if stale.header.Get("ETag") != newTag {
		t.Fatalf("412's ETag %q, want %q", stale.header.Get("ETag"), newTag)
	}
	if got := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}); got.json["full_name"] != "Ada" {
		t.Fatalf("a refused PATCH changed the profile: %s", got.body)
	}

	_, admin := a.superuser("root@example.com")
	id := me.str("id")
	userPath := "/api/v1/users/" + id
	got := a.do(req{method: "GET", path: userPath, token: admin})
	if got.header.Get("ETag") != newTag {
		t.Fatalf("GET /users/{id} ETag %q, want %q", got.header.Get("ETag"), newTag)
	}
	expectProblem(t, a.do(withTag(req{method: "PATCH", path: userPath, token: admin, body: map[string]any{"is_active": false}}, "If-Match", tag)), 412, "precondition_failed")
	expectProblem(t, a.do(withTag(req{method: "DELETE", path: userPath, token: admin}, "If-Match", tag)), 412, "precondition_failed")
	if r := a.do(req{method: "GET", path: "/api/v1/users/me", token: token}); r.status != 200 || r.json["is_active"] != true {
		t.Fatalf("a refused admin change took effect: %d %s", r.status, r.body)
	}
	list := a.do(req{method: "GET", path: "/api/v1/users", token: admin})
	for _, u := range list.json["data"].([]any) {
		if v, _ := u.(map[string]any)["version"].(float64); v < 1 {
			t.Fatalf("a list entry without version: %v", u)
		}
	}
	expectProblem(t, a.do(withTag(req{method: "DELETE", path: "/api/v1/users/00000000-0000-4000-8000-000000000000", token: admin}, "If-Match", tag)), 404, "not_found")
	expectStatus(t, a.do(withTag(req{method: "DELETE", path: userPath, token: admin}, "If-Match", newTag)), 204)
}

// IF_MATCH_REQUIRED=true: a write without If-Match is 428 (after 404),
// with the current ETag; with it, as before.
func TestIfMatchRequired(t *testing.T) {
	a := newTestApp(t, map[string]string{"IF_MATCH_REQUIRED": "true"})
	a.register("ada@example.com", "password-123")
	token := a.login("ada@example.com", "password-123")
	created := a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": "Guarded"}})
	path := "/api/v1/items/" + created.str("id")
	r := a.do(req{method: "PATCH", path: path, token: token, body: map[string]any{"title": "x"}})
	expectProblem(t, r, 428, "precondition_required")
	if r.header.Get("ETag") != `"1"` {
		t.Fatalf("428 without the current ETag: %v", r.header)
	}
	expectProblem(t, a.do(req{method: "DELETE", path: path, token: token}), 428, "precondition_required")
	expectProblem(t, a.do(req{method: "DELETE", path: "/api/v1/items/00000000-0000-4000-8000-000000000000", token: token}), 404, "not_found")
	expectProblem(t, a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, body: map[string]any{"full_name": "x"}}), 428, "precondition_required")
	expectStatus(t, a.do(withTag(req{method: "PATCH", path: path, token: token, body: map[string]any{"title": "x"}}, "If-Match", `"1"`)), 200)
	expectStatus(t, a.do(withTag(req{method: "DELETE", path: path, token: token}, "If-Match", `"2"`)), 204)
}
