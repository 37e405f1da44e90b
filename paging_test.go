package main

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// walk follows next_cursor from the first page of path to the last, and
// returns each page's rows; between pages it calls between.
func walk(t *testing.T, a *testApp, token, path string, limit int, between func(page int)) [][]map[string]any {
	t.Helper()
	var pages [][]map[string]any
	next := fmt.Sprintf("%s?limit=%d", path, limit)
	for i := 0; next != ""; i++ {
		r := a.do(req{method: "GET", path: next, token: token})
		expectStatus(t, r, 200)
		var rows []map[string]any
		for _, d := range r.json["data"].([]any) {
			rows = append(rows, d.(map[string]any))
		}
		pages = append(pages, rows)
		cursor, _ := r.json["next_cursor"].(string)
		link := r.header.Get("Link")
		if cursor == "" {
			if r.json["next_cursor"] != nil || link != "" || len(rows) > limit {
				t.Fatalf("last page: next_cursor %v, Link %q, %d rows", r.json["next_cursor"], link, len(rows))
			}
			break
		}
		next = path + "?" + url.Values{"cursor": {cursor}, "limit": {fmt.Sprint(limit)}}.Encode()
		if len(rows) != limit || link != "<"+next+`>; rel="next"` {
			t.Fatalf("page %d: %d rows of %d, Link %q, want <%s>", i, len(rows), limit, link, next)
		}
		if between != nil {
			between(i)
		}
	}
	return pages
}

// Following next_cursor with limit 7 visits every item exactly once, newest
// first, while items are created and deleted between pages and meanwhile:
// no duplicate, and nothing skipped that existed when the walk began and
// was not deleted.
func TestCursorWalkVisitsEveryItemOnce(t *testing.T) {
	a := newTestApp(t, nil)
	_, token := a.signup("walker@example.com")
	create := func(title string) string {
		return a.do(req{method: "POST", path: "/api/v1/items", token: token, body: map[string]any{"title": title}}).str("id")
	}
	before := map[string]bool{}
	var ids []string
	for i := range 60 {
		a.clock.Advance(time.Second)
		id := create(fmt.Sprintf("item %d", i))
		before[id] = true
		ids = append(ids, id)
	}
	a.clock.Advance(time.Second)
	deleted := map[string]bool{}
	var mu sync.Mutex
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { // meanwhile: creates, and deletes of items not yet seen
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			send(a.srv.URL, "POST", "/api/v1/items", token, `{"title":"noise"}`)
			if i%5 == 4 {
				mu.Lock()
				victim := ids[len(ids)-1-i%len(ids)]
				deleted[victim] = true
				mu.Unlock()
				send(a.srv.URL, "DELETE", "/api/v1/items/"+victim, token, "")
			}
		}
	})
	pages := walk(t, a, token, "/api/v1/items", 7, func(page int) {
		create(fmt.Sprintf("between %d", page)) // newer than the walk's start
		mu.Lock()
		victim := ids[(page*7+3)%len(ids)]
		deleted[victim] = true
		mu.Unlock()
		a.do(req{method: "DELETE", path: "/api/v1/items/" + victim, token: token})
	})
	close(stop)
	bg.Wait()
	seen := map[string]bool{}
	var last position
	for p, rows := range pages {
		for _, row := range rows {
			id := row["id"].(string)
			if seen[id] {
				t.Fatalf("page %d: %s twice", p, id)
			}
			seen[id] = true
			at, _ := time.Parse(time.RFC3339Nano, row["created_at"].(string))
			here := position{createdAt: at, id: id}
			if last.id != "" && !(here.createdAt.Before(last.createdAt) || here.createdAt.Equal(last.createdAt) && here.id < last.id) {
				t.Fatalf("page %d: %v comes after %v: not newest first", p, here, last)
			}
			last = here
		}
	}
	for id := range before {
		if !seen[id] && !deleted[id] {
			t.Fatalf("%s existed when the walk began, was not deleted, and was skipped", id)
		}
	}
}

// A cursor carries a position only: another user's cursor pages the other
// user's own items after it. A cursor of another list, an edited one, a
// malformed one, an offset past 10,000 or with a cursor are 422 naming the
// parameter, and nothing else is answered.
func TestCursorsAreStrictAndAuthoriseNothing(t *testing.T) {
	a := newTestApp(t, nil)
	_, alice := a.signup("alice@example.com")
	_, bob := a.signup("bob@example.com")
	mine := map[string][]string{}
	for i := range 6 { // Alice's at seconds 1 to 6, Bob's half a second after each
		for _, who := range []struct{ name, token string }{{"alice", alice}, {"bob", bob}} {
			a.clock.Advance(500 * time.Millisecond)
			mine[who.name] = append(mine[who.name], a.do(req{method: "POST", path: "/api/v1/items", token: who.token, body: map[string]any{"title": fmt.Sprint(who.name, i)}}).str("id"))
		}
	}
	first := a.do(req{method: "GET", path: "/api/v1/items?limit=2", token: alice})
	cursor := first.str("next_cursor")
	theirs := a.do(req{method: "GET", path: "/api/v1/items?limit=10&cursor=" + url.QueryEscape(cursor), token: bob})
	expectStatus(t, theirs, 200)
	var got []string
	for _, d := range theirs.json["data"].([]any) {
		got = append(got, d.(map[string]any)["id"].(string))
	}
	// Alice's second item from the top is her fifth: Bob's after it are his
	// first four, newest first.
	want := []string{mine["bob"][3], mine["bob"][2], mine["bob"][1], mine["bob"][0]}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Bob with Alice's cursor got %v, want his own after that position %v", got, want)
	}

	sessions := a.do(req{method: "GET", path: "/api/v1/users/me/sessions?limit=1", token: alice})
	a.login("alice@example.com", "password-123")
	sessions = a.do(req{method: "GET", path: "/api/v1/users/me/sessions?limit=1", token: alice})
	foreign := sessions.str("next_cursor")
	if foreign == "" {
		t.Fatalf("no sessions cursor: %s", sessions.body)
	}
	edited := []byte(cursor)
	edited[10] ^= 1
	for _, c := range []struct{ query, field string }{
		{"cursor=" + url.QueryEscape(foreign), "cursor"},
		{"cursor=" + url.QueryEscape(string(edited)), "cursor"},
		{"cursor=" + url.QueryEscape(cursor) + "x", "cursor"},
		{"cursor=" + url.QueryEscape(cursor[:len(cursor)-2]), "cursor"},
		{"cursor=%00", "cursor"},
		{"cursor=", "cursor"},
		{"cursor=" + strings.Repeat("A", 5000), "cursor"},
		{"offset=10001", "offset"},
		{"offset=1&cursor=" + url.QueryEscape(cursor), "offset"},
	} {
		r := a.do(req{method: "GET", path: "/api/v1/items?" + c.query, token: alice})
		expectProblem(t, r, 422, "validation_failed")
		if f := fieldErrors(r); len(f) != 1 || f[0] != c.field {
			t.Fatalf("?%s: fields %v, want %s", c.query, f, c.field)
		}
	}
	r := a.do(req{method: "GET", path: "/api/v1/items?offset=10001", token: alice})
	if !strings.Contains(string(r.body), "cursor") {
		t.Fatalf("the offset refusal does not point at cursor: %s", r.body)
	}
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items?offset=10000", token: alice}), 200)
	// Without a live session, a bad cursor is still 401 first.
	expectProblem(t, a.do(req{method: "GET", path: "/api/v1/items?cursor=nonsense"}), 401, "unauthorized")
}

// count is exact for items and users, kept with the rows: at 9,999, 10,000
// and 10,001 items, and after concurrent creates and deletes; a user's
// sessions, whose total is not kept, stop at 10,000 with count_capped.
func TestPageCounts(t *testing.T) {
	a := newTestApp(t, nil)
	ownerID, token := a.signup("many@example.com")
	_, su := a.superuser("root@example.com")
	count := func(token, path string) (float64, any) {
		r := a.do(req{method: "GET", path: path + "?limit=1", token: token})
		expectStatus(t, r, 200)
		return r.json["count"].(float64), r.json["count_capped"]
	}
	bulk := func(n int) {
		if _, err := a.db.Exec(`INSERT INTO items (owner_id, title, created_at, updated_at) SELECT $1, 'bulk', now() - g * interval '1 ms', now() FROM generate_series(1, $2) g`, ownerID, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct{ add, want int }{{9_999, 9_999}, {1, 10_000}, {1, 10_001}} {
		bulk(step.add)
		if n, capped := count(token, "/api/v1/items"); n != float64(step.want) || capped != nil {
			t.Fatalf("count %v (capped %v), want %d exactly", n, capped, step.want)
		}
	}
	// Concurrent creates and deletes through the API.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 15 {
				_, id, _ := send(a.srv.URL, "POST", "/api/v1/items", token, fmt.Sprintf(`{"title":"c%d-%d"}`, w, i))
				if i%3 == 0 && id != "" {
					send(a.srv.URL, "DELETE", "/api/v1/items/"+id, token, "")
				}
			}
		})
	}
	wg.Wait()
	var truth, all int
	a.db.QueryRow(`SELECT count(*) FROM items WHERE owner_id = $1`, ownerID).Scan(&truth)
	a.db.QueryRow(`SELECT count(*) FROM items`).Scan(&all)
	if n, _ := count(token, "/api/v1/items"); n != float64(truth) {
		t.Fatalf("after concurrent creates and deletes: count %v, the table holds %d", n, truth)
	}
	if n, _ := count(su, "/api/v1/items"); n != float64(all) {
		t.Fatalf("a superuser's count %v, the table holds %d", n, all)
	}
	var users int
	a.db.QueryRow(`SELECT count(*) FROM users`).Scan(&users)
	if n, _ := count(su, "/api/v1/users"); n != float64(users) {
		t.Fatalf("users count %v, the table holds %d", n, users)
	}
	a.do(req{method: "DELETE", path: "/api/v1/users/" + ownerID, token: su})
	if n, _ := count(su, "/api/v1/users"); n != float64(users-1) {
		t.Fatalf("users count %v after a deletion, want %d", n, users-1)
	}

	// Sessions: 10,000 live ones count exactly; one more is capped.
	uid, stoken := a.signup("busy@example.com")
	sessions := func(n int) {
		if _, err := a.db.Exec(`INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at)
			SELECT sha256(convert_to($1 || g, 'UTF8')), $2, $3, $3, $3::timestamptz + interval '1 hour' FROM generate_series(1, $4) g`,
			fmt.Sprint(n), uid, a.clock.Now(), n); err != nil {
			t.Fatal(err)
		}
	}
	sessions(9_999) // with the one signup made: 10,000
	if n, capped := count(stoken, "/api/v1/users/me/sessions"); n != 10_000 || capped != nil {
		t.Fatalf("10,000 sessions: count %v, capped %v", n, capped)
	}
	sessions(1)
	if n, capped := count(stoken, "/api/v1/users/me/sessions"); n != 10_000 || capped != true {
		t.Fatalf("10,001 sessions: count %v, capped %v, want 10000 and true", n, capped)
	}
}
