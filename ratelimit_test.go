package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storesUnderTest runs a test against the memory store and the postgres
// store alike.
func storesUnderTest(t *testing.T, policies ...*policy) map[string]limitStore {
	db, _ := migratedDB(t)
	return map[string]limitStore{
		"memory":   newMemoryStore(1000, policies...),
		"postgres": &postgresStore{db: db, policies: policies},
	}
}

// windowStart is a time exactly at the start of p's fixed window.
func windowStart(p *policy) time.Time {
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return t.Truncate(p.window)
}

func TestSlidingWindowBoundaries(t *testing.T) {
	p := &policy{name: "auth", limit: 3, window: time.Minute}
	for name, s := range storesUnderTest(t, p) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			start := windowStart(p)
			take := func(at time.Duration) limitDecision {
				t.Helper()
				d, err := s.take(ctx, p, "k", start.Add(at), true)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			for i, wantRemaining := range []int{2, 1, 0} {
				d := take(0)
				if !d.allowed || d.remaining != wantRemaining {
					t.Fatalf("request %d: allowed=%v remaining=%d, want true %d", i+1, d.allowed, d.remaining, wantRemaining)
				}
			}
			d := take(0)
			// 3 in this window: the window must roll (60 s) and a third of
			// the next must pass before 3 × (1 - 20/60) + 1 fits in 3.
			if d.allowed || d.retryAfter != 80*time.Second || d.remaining != 0 {
				t.Fatalf("4th: allowed=%v retryAfter=%v remaining=%d, want false 80s 0", d.allowed, d.retryAfter, d.remaining)
			}
			// Refused requests do not count: the wait does not grow.
			if d := take(time.Second); d.allowed || d.retryAfter != 79*time.Second {
				t.Fatalf("refused request counted: %v", d.retryAfter)
			}
			if d := take(79 * time.Second); d.allowed {
				t.Fatal("allowed before Retry-After")
			}
			if d := take(80 * time.Second); !d.allowed {
				t.Fatal("refused at Retry-After")
			}
			// Halfway into a window whose predecessor had 3: 1.5 weigh, so
			// one fits and the next does not.
			d = take(150 * time.Second) // window 2, 30 s in; window 1 holds 1
			if !d.allowed {
				t.Fatal("refused after the slide")
			}
			// Two windows of silence forget everything.
			for range 3 {
				if d := take(300 * time.Second); !d.allowed {
					t.Fatal("old counts still weigh after two windows")
				}
			}
			if d := take(300 * time.Second); d.allowed {
				t.Fatal("limit not enforced after the reset")
			}
		})
	}
}

func TestRetryAfterNeverExceedsTwoWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		p := &policy{name: "x", limit: 1 + rng.IntN(50), window: time.Duration(1+rng.IntN(3600)) * time.Second}
		c := windowCount{prev: int32(rng.IntN(2 * p.limit)), curr: int32(rng.IntN(p.limit + 1))}
		elapsed := time.Duration(rng.Int64N(int64(p.window)))
		d := p.decide(c, elapsed)
		if d.allowed {
			continue
		}
		if d.retryAfter <= 0 || d.retryAfter > 2*p.window {
			t.Fatalf("limit %d window %v state %+v at %v: retryAfter %v", p.limit, p.window, c, elapsed, d.retryAfter)
		}
		// Waiting exactly that long lets a request through.
		idx := int64(0)
		later := elapsed + d.retryAfter
		c2 := c
		c2.index = idx
		c2 = c2.at(idx + int64(later/p.window))
		if !p.decide(c2, later%p.window).allowed {
			t.Fatalf("state %+v limit %d: still refused after Retry-After %v", c, p.limit, d.retryAfter)
		}
	}
}

func TestLimiterConcurrency(t *testing.T) {
	p := &policy{name: "api", limit: 100, window: time.Minute}
	for name, s := range storesUnderTest(t, p) {
		t.Run(name, func(t *testing.T) {
			now := windowStart(p)
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					for range 10 {
						d, err := s.take(context.Background(), p, "hot", now, true)
						if err != nil {
							t.Error(err)
							return
						}
						if d.allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if allowed.Load() != 100 {
				t.Fatalf("%d of 200 let through on one key, want exactly 100", allowed.Load())
			}
			// Many keys: every request counted once, none lost.
			for k := range 20 {
				key := "k" + strconv.Itoa(k)
				wg.Go(func() {
					for range 5 {
						s.take(context.Background(), p, key, now, true)
					}
				})
				wg.Go(func() {
					for range 5 {
						s.take(context.Background(), p, key, now, true)
					}
				})
			}
			wg.Wait()
			for k := range 20 {
				d, _ := s.take(context.Background(), p, "k"+strconv.Itoa(k), now, false)
				if d.remaining != 89 { // 10 counted; the peek would be the 11th
					t.Fatalf("key %d: remaining %d after 10 requests, want 89", k, d.remaining)
				}
			}
		})
	}
}

func TestMemoryCapUnderAFlood(t *testing.T) {
	const maxKeys = 10_000
	p := &policy{name: "auth", limit: 5, window: time.Minute}
	s := newMemoryStore(maxKeys, p)
	ctx := context.Background()
	now := windowStart(p)
	take := func(key string) bool {
		d, _ := s.take(ctx, p, key, now, true)
		return d.allowed
	}
	for range 4 {
		take("203.0.113.9") // an attacker over half its limit
	}
	// A flood of fresh addresses from one /16, one request each.
	refused := 0
	for i := range 65_536 {
		if !take("10.1." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)) {
			refused++
		}
	}
	if n := s.len(p); n != maxKeys {
		t.Fatalf("table holds %d keys, want the cap %d", n, maxKeys)
	}
	if refused != 0 {
		t.Fatalf("%d of the flood's first requests refused; light keys should make room", refused)
	}
	// A client of another network is served.
	if !take("192.0.2.1") {
		t.Fatal("a client of another network was refused while the table was full")
	}
	// The attacker's count survived the flood: one left, then refused.
	if !take("203.0.113.9") {
		t.Fatal("attacker's 5th refused")
	}
	if take("203.0.113.9") {
		t.Fatal("the flood reset the attacker's count")
	}

	// A table full of heavy keys (3 of 5 spent) from one /16: newcomers of
	// that /16 share one count; a newcomer of another network has its own.
	s = newMemoryStore(maxKeys, p)
	for i := range maxKeys {
		key := "10.2." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
		take(key)
		take(key)
		take(key)
	}
	let := 0
	for i := range 1000 {
		if take("10.2.200." + strconv.Itoa(i%250)) {
			let++
		}
	}
	if let != p.limit {
		t.Fatalf("newcomers of the flooding /16 got %d requests through, want %d (one shared count)", let, p.limit)
	}
	if !take("198.51.100.7") || !take("2001:db8:1::/64") {
		t.Fatal("a newcomer of another network shares the flood's count")
	}
	// Once the windows pass, the janitor frees the room.
	s.sweep(ctx, now.Add(2*p.window))
	if n := s.len(p); n != 0 {
		t.Fatalf("%d keys after the sweep", n)
	}
}

func TestClientIPSpoofing(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name, peer string
		headers    map[string][]string
		want       string
	}{
		{"untrusted peer, no headers", "203.0.113.9:4000", nil, "203.0.113.9"},
		{"untrusted peer sends X-Forwarded-For", "203.0.113.9:4000", map[string][]string{"X-Forwarded-For": {"1.2.3.4"}}, "203.0.113.9"},
		{"untrusted peer sends X-Real-IP", "203.0.113.9:4000", map[string][]string{"X-Real-Ip": {"1.2.3.4"}}, "203.0.113.9"},
		{"untrusted peer sends True-Client-IP", "203.0.113.9:4000", map[string][]string{"True-Client-Ip": {"1.2.3.4"}}, "203.0.113.9"},
		{"trusted proxy, one hop", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"198.51.100.7"}}, "198.51.100.7"},
		{"trusted proxy ignores X-Real-IP", "10.0.0.2:4000", map[string][]string{"X-Real-Ip": {"1.2.3.4"}}, "10.0.0.2"},
		{"two trusted hops", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"198.51.100.7, 10.0.0.5"}}, "198.51.100.7"},
		{"hops in two header lines", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"198.51.100.7", "10.0.0.5"}}, "198.51.100.7"},
		{"client prepends a fake hop", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"6.6.6.6, 198.51.100.7"}}, "198.51.100.7"},
		{"client claims to be a trusted proxy", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"10.9.9.9, 198.51.100.7"}}, "198.51.100.7"},
		{"malformed hop", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"6.6.6.6, not-an-ip"}}, "10.0.0.2"},
		{"empty hop", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {""}}, "10.0.0.2"},
		{"only trusted hops", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"10.0.0.3"}}, "10.0.0.3"},
		{"hop with port", "10.0.0.2:4000", map[string][]string{"X-Forwarded-For": {"198.51.100.7:5555"}}, "198.51.100.7"},
		{"ipv6 peer", "[2001:db8::1]:4000", nil, "2001:db8::1"},
		{"ipv4-mapped peer", "[::ffff:203.0.113.9]:4000", nil, "203.0.113.9"},
		{"ipv6 through trusted v6 proxy", "[fd00::1]:4000", map[string][]string{"X-Forwarded-For": {"2001:db8:1:2::99"}}, "2001:db8:1:2::99"},
		{"zone stripped", "[fe80::1%eth0]:4000", nil, "fe80::1"},
		{"ipv6 peer in capitals", "[2001:DB8::1]:4000", nil, "2001:db8::1"},
		{"ipv6 peer spelt long", "[2001:db8:0:0:0:0:0:1]:4000", nil, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for k, v := range tt.headers {
				r.Header[k] = v
			}
			if got := clientIP(r, trusted); got != tt.want {
				t.Fatalf("clientIP=%q, want %q", got, tt.want)
			}
		})
	}
	// The usual peer, IPv4 and untrusted, is its own text: no allocation.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.9:4000"
	if n := testing.AllocsPerRun(100, func() { clientIP(r, trusted) }); n != 0 {
		t.Fatalf("clientIP allocates %v times for an IPv4 peer", n)
	}
	if a, b := clientNetwork("2001:db8:1:2::1"), clientNetwork("2001:db8:1:2:ffff::9"); a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("IPv6 keys: %q %q, want one /64", a, b)
	}
	if clientNetwork("198.51.100.7") != "198.51.100.7" {
		t.Fatal("IPv4 key changed")
	}
}

func TestRateLimitOverHTTP(t *testing.T) {
	a := newTestApp(t, map[string]string{"RATE_LIMIT_AUTH_REQUESTS": "3", "RATE_LIMIT_API_REQUESTS": "5"})
	body := map[string]any{"email": "x@example.com", "password": "password-123"}
	for i := range 3 {
		r := a.do(req{method: "POST", path: "/api/v1/auth/login", body: body})
		expectStatus(t, r, 401)
		if r.header.Get("RateLimit-Policy") != `"auth";q=3;w=60` || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("request %d headers: %v", i, r.header)
		}
	}
	r := a.do(req{method: "POST", path: "/api/v1/auth/register", body: body})
	expectProblem(t, r, 429, "rate_limited")
	ra, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if ra < 60 || ra > 120 || r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") != strconv.Itoa(ra) {
		t.Fatalf("429 headers: %v", r.header)
	}
	if r.header.Get("RateLimit") != `"auth";r=0;t=`+strconv.Itoa(ra) || r.header.Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("RateLimit=%q", r.header.Get("RateLimit"))
	}
	var n int
	a.db.QueryRow(`SELECT count(*) FROM users`).Scan(&n)
	if n != 0 {
		t.Fatal("a refused registration reached the database")
	}
	// Auth routes do not spend the api budget, and health is never limited.
	for range 20 {
		expectStatus(t, a.do(req{method: "GET", path: "/api/v1/health"}), 200)
		expectStatus(t, a.do(req{method: "GET", path: "/api/v1/health/live"}), 200)
	}
	for i := range 5 {
		r := a.do(req{method: "GET", path: "/api/v1/items"})
		expectStatus(t, r, 401)
		if r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(4-i) {
			t.Fatalf("api remaining=%q at %d", r.header.Get("X-RateLimit-Remaining"), i)
		}
	}
	expectProblem(t, a.do(req{method: "GET", path: "/api/v1/items"}), 429, "rate_limited")
	if r := a.do(req{method: "GET", path: "/api/v1/health"}); r.header.Get("RateLimit") != "" {
		t.Fatal("health carries rate-limit headers")
	}
	// The window slides on the injected clock.
	a.clock.Advance(2 * time.Minute)
	expectStatus(t, a.do(req{method: "POST", path: "/api/v1/auth/login", body: body}), 401)
}

func TestPostgresStoreSharedByReplicas(t *testing.T) {
	db, dsn := migratedDB(t)
	env := func() map[string]string {
		return map[string]string{"RATE_LIMIT_STORE": "postgres", "RATE_LIMIT_AUTH_REQUESTS": "4"}
	}
	one := newTestAppOn(t, db, dsn, env())
	two := newTestAppOn(t, db, dsn, env())
	two.clock = one.clock
	body := map[string]any{"email": "x@example.com", "password": "password-123"}
	for i := range 4 {
		app := []*testApp{one, two}[i%2]
		expectStatus(t, app.do(req{method: "POST", path: "/api/v1/auth/login", body: body}), 401)
	}
	expectProblem(t, one.do(req{method: "POST", path: "/api/v1/auth/login", body: body}), 429, "rate_limited")
	expectProblem(t, two.do(req{method: "POST", path: "/api/v1/auth/login", body: body}), 429, "rate_limited")

	// The janitor's sweep deletes rows whose windows have passed.
	var rows int
	db.QueryRow(`SELECT count(*) FROM rate_limits`).Scan(&rows)
	if rows == 0 {
		t.Fatal("no counters stored")
	}
	if err := one.deps.limits.store.sweep(context.Background(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`SELECT count(*) FROM rate_limits`).Scan(&rows)
	if rows != 0 {
		t.Fatalf("%d expired counters left", rows)
	}
}

func TestPostgresStoreDownFailsClosedOnAuthOnly(t *testing.T) {
	a := newTestApp(t, map[string]string{"RATE_LIMIT_STORE": "postgres"})
	_, token := a.signup("u@example.com")
	dead, _ := sqlOpenDead(t)
	a.deps.limits.store = &postgresStore{db: dead, policies: []*policy{a.deps.limits.auth, a.deps.limits.api}}
	r := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "u@example.com", "password": "password-123"}})
	expectProblem(t, r, 503, "unavailable")
	expectStatus(t, a.do(req{method: "GET", path: "/api/v1/items", token: token}), 200)
	if len(a.logs.linesWith(t, "msg", "rate-limit store failed")) < 2 {
		t.Fatal("store failures not logged")
	}
}

func TestRateLimitDisabled(t *testing.T) {
	a := newTestApp(t, map[string]string{"RATE_LIMIT_ENABLED": "false", "RATE_LIMIT_AUTH_REQUESTS": "1"})
	for range 3 {
		r := a.do(req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "x@example.com", "password": "password-123"}})
		if r.status != http.StatusUnauthorized || r.header.Get("RateLimit") != "" {
			t.Fatalf("disabled limiter answered %d %v", r.status, r.header)
		}
	}
}

// A full login table must not become a lockout for every other account.
func TestLoginTableFullDoesNotLockOutAccounts(t *testing.T) {
	login := &policy{name: "login", limit: 3, window: time.Minute, overflowPasses: true}
	s := newMemoryStore(100, login)
	ctx := context.Background()
	now := windowStart(login)
	for range 3 {
		s.take(ctx, login, "victim@example.com", now, true)
	}
	for i := range 10_000 { // failed logins for made-up accounts
		s.take(ctx, login, "fake"+strconv.Itoa(i)+"@example.com", now, true)
	}
	if d, _ := s.take(ctx, login, "owner@example.com", now, false); !d.allowed {
		t.Fatal("an untracked account is locked out by the flood")
	}
	if d, _ := s.take(ctx, login, "victim@example.com", now, false); d.allowed {
		t.Fatal("a tracked account's failures were forgotten")
	}
	if n := s.len(login); n != 100 {
		t.Fatalf("table grew to %d", n)
	}
}
