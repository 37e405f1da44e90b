package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loginFrom signs in as email from a client address (through the trusted
// proxy's X-Forwarded-For, as nginx would send it).
func loginFrom(a *testApp, ip, email, password string) response {
	a.t.Helper()
	return a.do(req{method: "POST", path: "/api/v1/auth/login", header: map[string]string{"X-Forwarded-For": ip},
		body: map[string]any{"email": email, "password": password}})
}

func behindProxy(env map[string]string) map[string]string {
	env["TRUSTED_PROXIES"] = "127.0.0.1/32"
	return env
}

// The attacker's failures from one network do not lock the owner out of
// another; the attacker's own network is refused before any hashing.
func TestLoginBudgetIsPerNetwork(t *testing.T) {
	for _, store := range []string{"memory", "postgres"} {
		t.Run(store, func(t *testing.T) {
			a := newTestApp(t, behindProxy(map[string]string{"RATE_LIMIT_STORE": store}))
			a.register("victim@example.com", "password-123")
			for i := range 10 {
				expectProblem(t, loginFrom(a, "198.51.100.7", "Victim@example.com", "guess-"+strconv.Itoa(i)+"xx"), 401, "unauthorized")
			}
			before := a.deps.hasher.derived.Load()
			r := loginFrom(a, "198.51.100.7", "victim@example.com", "password-123")
			expectProblem(t, r, 429, "rate_limited")
			if got, want := r.header.Get("RateLimit-Policy"), `"login";q=10;w=900`; got != want {
				t.Fatalf("RateLimit-Policy=%q, want %q (the policy that refused)", got, want)
			}
			if r.header.Get("Retry-After") == "" || !strings.Contains(r.header.Get("RateLimit"), "t="+r.header.Get("Retry-After")) {
				t.Fatalf("Retry-After %q and RateLimit %q disagree", r.header.Get("Retry-After"), r.header.Get("RateLimit"))
			}
			if n := a.deps.hasher.derived.Load() - before; n != 0 {
				t.Fatalf("%d hashes for a refused login, want none", n)
			}
			// The owner, from another network, signs in.
			expectStatus(t, loginFrom(a, "203.0.113.5", "victim@example.com", "password-123"), 200)
			// IPv6: the /64 is the network.
			expectStatus(t, loginFrom(a, "2001:db8:1:2::1", "victim@example.com", "password-123"), 200)
			a.clock.Advance(31 * time.Minute)
			expectStatus(t, loginFrom(a, "198.51.100.7", "victim@example.com", "password-123"), 200)
		})
	}
}

// 101 failures from 101 networks spend the account budget: the owner still
// signs in from a network they used before; a new network gets 429.
func TestAccountBudgetSparesKnownNetworks(t *testing.T) {
	for _, store := range []string{"memory", "postgres"} {
		t.Run(store, func(t *testing.T) {
			a := newTestApp(t, behindProxy(map[string]string{"RATE_LIMIT_STORE": store}))
			a.register("owner@example.com", "password-123")
			expectStatus(t, loginFrom(a, "203.0.113.5", "owner@example.com", "password-123"), 200)
			a.clock.Advance(24 * time.Hour) // the known network is remembered for days, not a window
			for i := range 100 {
				expectProblem(t, loginFrom(a, fmt.Sprintf("10.%d.%d.1", i/200, i%200), "owner@example.com", "wrong-password"), 401, "unauthorized")
			}
			r := loginFrom(a, "10.9.9.9", "owner@example.com", "wrong-password")
			expectProblem(t, r, 429, "rate_limited")
			if got := r.header.Get("RateLimit-Policy"); got != `"account";q=100;w=3600` {
				t.Fatalf("RateLimit-Policy=%q, want the account policy", got)
			}
			expectStatus(t, loginFrom(a, "203.0.113.5", "owner@example.com", "password-123"), 200)
			r = loginFrom(a, "192.0.2.50", "owner@example.com", "password-123")
			expectProblem(t, r, 429, "rate_limited")
			// Known networks go with the account.
			var n int
			a.db.QueryRow(`SELECT count(*) FROM login_networks`).Scan(&n)
			if n != 1 {
				t.Fatalf("%d known networks, want 1", n)
			}
			a.db.Exec(`DELETE FROM users WHERE email = 'owner@example.com'`)
			a.db.QueryRow(`SELECT count(*) FROM login_networks`).Scan(&n)
			if n != 0 {
				t.Fatalf("%d known networks left after the account was deleted", n)
			}
		})
	}
}

// Concurrent guesses cannot overshoot: failures are reserved before the
// password is hashed. Counted in hashes, not statuses.
func TestConcurrentGuessesDoNotOvershoot(t *testing.T) {
	for _, store := range []string{"memory", "postgres"} {
		t.Run(store, func(t *testing.T) {
			a := newTestApp(t, behindProxy(map[string]string{"RATE_LIMIT_STORE": store}))
			a.register("target@example.com", "password-123")
			before := a.deps.hasher.derived.Load()
			var wg sync.WaitGroup
			statuses := make([]int, 50)
			for i := range 50 {
				wg.Go(func() {
					hr, _ := http.NewRequest("POST", a.srv.URL+"/api/v1/auth/login", strings.NewReader(`{"email":"target@example.com","password":"wrong-password"}`))
					hr.Header.Set("Content-Type", "application/json")
					hr.Header.Set("X-Forwarded-For", "198.51.100.7")
					resp, err := http.DefaultClient.Do(hr)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				})
			}
			wg.Wait()
			if n := a.deps.hasher.derived.Load() - before; n > 10 {
				t.Fatalf("%d passwords checked against a budget of 10", n)
			}
			count := map[int]int{}
			for _, s := range statuses {
				count[s]++
			}
			if count[401] != 10 || count[429] != 40 {
				t.Fatalf("statuses %v, want 10 x 401 and 40 x 429", count)
			}
		})
	}
}

// The owner's right passwords give their reservations back: they never
// count, even between an attacker's guesses.
func TestRightPasswordsDoNotCount(t *testing.T) {
	a := newTestApp(t, behindProxy(map[string]string{"RATE_LIMIT_LOGIN_FAILURES": "3"}))
	a.register("me@example.com", "password-123")
	for range 20 {
		expectStatus(t, loginFrom(a, "198.51.100.7", "me@example.com", "password-123"), 200)
	}
	for range 2 {
		expectProblem(t, loginFrom(a, "198.51.100.7", "me@example.com", "wrong-password"), 401, "unauthorized")
	}
	expectStatus(t, loginFrom(a, "198.51.100.7", "me@example.com", "password-123"), 200)
	expectProblem(t, loginFrom(a, "198.51.100.7", "me@example.com", "wrong-password"), 401, "unauthorized")
	expectProblem(t, loginFrom(a, "198.51.100.7", "me@example.com", "password-123"), 429, "rate_limited")
}

// Wrong current passwords at a password or email change are failures too,
// and an email change needs the current password under the auth budget.
func TestWrongCurrentPasswordsCount(t *testing.T) {
	a := newTestApp(t, behindProxy(map[string]string{"RATE_LIMIT_LOGIN_FAILURES": "4"}))
	_, token := a.signup("me@example.com")
	a.signup("taken@example.com")
	xff := map[string]string{"X-Forwarded-For": "198.51.100.7"}
	change := func(current string) response {
		return a.do(req{method: "POST", path: "/api/v1/users/me/password", token: token, header: xff,
			body: map[string]any{"current_password": current, "new_password": "another-password"}})
	}
	email := func(body map[string]any) response {
		return a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, header: xff, body: body})
	}
	r := email(map[string]any{"email": "taken@example.com"})
	expectProblem(t, r, 422, "validation_failed")
	if f := fieldErrors(r); len(f) != 1 || f[0] != "current_password" {
		t.Fatalf("an email change without the current password: %s", r.body)
	}
	for i := range 2 {
		expectProblem(t, change("wrong-password-"+strconv.Itoa(i)), 422, "validation_failed")
	}
	expectProblem(t, email(map[string]any{"email": "taken@example.com", "current_password": "wrong-password"}), 422, "validation_failed")
	expectProblem(t, email(map[string]any{"email": "new@example.com", "current_password": "wrong-password"}), 422, "validation_failed")
	r = change("password-123")
	expectProblem(t, r, 429, "rate_limited")
	if got := r.header.Get("RateLimit-Policy"); got != `"login";q=4;w=900` {
		t.Fatalf("RateLimit-Policy=%q", got)
	}
	// The taken address was never confirmed to a guesser; the owner, from
	// elsewhere, still asks for the email change with the right password
	// (it waits for the new address's link).
	other := map[string]string{"X-Forwarded-For": "203.0.113.5"}
	r = a.do(req{method: "PATCH", path: "/api/v1/users/me", token: token, header: other, body: map[string]any{"email": "new@example.com", "current_password": "password-123"}})
	if r.status != 200 || r.str("email") != "me@example.com" || r.str("pending_email") != "new@example.com" {
		t.Fatalf("email change with the right password: %d %s", r.status, r.body)
	}
	// The email change spends the auth budget (per IP), not the generous api one.
	if got := r.header.Get("RateLimit-Policy"); !strings.Contains(got, `"auth"`) && !strings.Contains(got, `"login"`) && !strings.Contains(got, `"account"`) {
		t.Fatalf("email change headers name %q", got)
	}
}

// The headers of a login tell the truth about the failure budgets: a
// right password spends nothing (its reservation is given back, and the
// headers say so), a wrong one spends one.
func TestLoginHeadersCountOnlyFailures(t *testing.T) {
	a := newTestApp(t, behindProxy(map[string]string{}))
	a.register("me@example.com", "password-123")
	for range 3 {
		r := loginFrom(a, "198.51.100.7", "me@example.com", "password-123")
		expectStatus(t, r, 200)
		if got := r.header.Get("RateLimit"); !strings.HasPrefix(got, `"login";r=10;`) || r.header.Get("X-RateLimit-Remaining") != "10" {
			t.Fatalf("a successful login's headers: RateLimit %q, X-RateLimit-Remaining %q", got, r.header.Get("X-RateLimit-Remaining"))
		}
	}
	r := loginFrom(a, "198.51.100.7", "me@example.com", "wrong-password")
	if got := r.header.Get("RateLimit"); !strings.HasPrefix(got, `"login";r=9;`) {
		t.Fatalf("a failed login's headers: RateLimit %q", got)
	}
}
