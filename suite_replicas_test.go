package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Several replicas of the real binary on one database: the cross-cutting
// suite for "Running more than one replica".

func replicaEnv(dsn string, extra ...string) []string {
	return append([]string{"DATABASE_URL=" + dsn, "RATE_LIMIT_STORE=postgres", "TRUSTED_PROXIES=127.0.0.1/32",
		"SHUTDOWN_DELAY=2s", "SHUTDOWN_TIMEOUT=5s", "LOG_LEVEL=info"}, extra...)
}

// startReplica runs one more replica on port (0: a free one).
func startReplica(t *testing.T, port int, env []string) *proc {
	t.Helper()
	if port != 0 {
		env = append(env, fmt.Sprintf("PORT=%d", port))
	}
	p := startBinary(t, env...)
	if port != 0 {
		p.port = port
	}
	waitReady(t, p.url())
	return p
}

func TestReplicasShareState(t *testing.T) {
	_, dsn := migratedDB(t)
	env := replicaEnv(dsn, "RATE_LIMIT_AUTH_REQUESTS=10", "RATE_LIMIT_LOGIN_FAILURES=3")
	r := []*proc{startReplica(t, 0, env), startReplica(t, 0, env), startReplica(t, 0, env)}
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }

	expectStatus(t, doRequest(t, r[0].url(), req{method: "POST", path: "/api/v1/auth/register", header: from("192.0.2.1"), body: map[string]any{"email": "shared@example.com", "password": "password-123"}}), 201)
	login := doRequest(t, r[1].url(), req{method: "POST", path: "/api/v1/auth/login", header: from("192.0.2.1"), body: map[string]any{"email": "shared@example.com", "password": "password-123"}})
	expectStatus(t, login, 200)
	token := login.str("access_token")
	for i, p := range r {
		if s := doRequest(t, p.url(), req{method: "GET", path: "/api/v1/users/me", token: token}).status; s != 200 {
			t.Fatalf("replica %d does not know a session made on replica 1: %d", i, s)
		}
	}
	expectStatus(t, doRequest(t, r[2].url(), req{method: "POST", path: "/api/v1/auth/logout", token: token}), 204)
	for i, p := range r {
		if s := doRequest(t, p.url(), req{method: "GET", path: "/api/v1/users/me", token: token}).status; s != 401 {
			t.Fatalf("replica %d still accepts a token logged out on replica 2: %d", i, s)
		}
	}

	// The auth budget is one across replicas: the 11th attempt is refused
	// whichever replica it reaches.
	for i := range 10 {
		resp := doRequest(t, r[i%3].url(), req{method: "POST", path: "/api/v1/auth/register", header: from("198.51.100.20"), body: map[string]any{"email": "x", "password": "y"}})
		if resp.status == 429 {
			t.Fatalf("attempt %d refused early", i+1)
		}
	}
	for i, p := range r {
		expectProblem(t, doRequest(t, p.url(), req{method: "POST", path: "/api/v1/auth/register", header: from("198.51.100.20"), body: map[string]any{"email": "x", "password": "y"}}), 429, "rate_limited")
		_ = i
	}

	// So are the per-account login budgets.
	for i := range 3 {
		expectProblem(t, doRequest(t, r[i].url(), req{method: "POST", path: "/api/v1/auth/login", header: from("203.0.113.30"), body: map[string]any{"email": "shared@example.com", "password": "wrong-password"}}), 401, "unauthorized")
	}
	resp := doRequest(t, r[0].url(), req{method: "POST", path: "/api/v1/auth/login", header: from("203.0.113.30"), body: map[string]any{"email": "shared@example.com", "password": "password-123"}})
	expectProblem(t, resp, 429, "rate_limited")
	if got := resp.header.Get("RateLimit-Policy"); !strings.Contains(got, `"login"`) {
		t.Fatalf("refused by %q, want the login policy", got)
	}
}

// loadResult counts a mixed load's outcomes.
type loadResult struct {
	ok, failed atomic.Int64
	created    sync.Map // titles answered 201
	mu         sync.Mutex
	failures   []string
}

func (l *loadResult) fail(s string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, s)
	}
	l.mu.Unlock()
}

// mixedLoad sends reads and writes through base until ctx ends: workers
// clients, each its own keep-alive connection pool.
func mixedLoad(ctx context.Context, client *http.Client, base, token string, workers int, res *loadResult) {
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				var r *http.Request
				title := ""
				if (i+w)%3 == 0 {
					title = fmt.Sprintf("load-%d", seq.Add(1))
					r, _ = http.NewRequest("POST", base+"/api/v1/items", strings.NewReader(`{"title":"`+title+`"}`))
					r.Header.Set("Content-Type", "application/json")
				} else {
					r, _ = http.NewRequest("GET", base+"/api/v1/items?limit=5", nil)
				}
				r.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(r)
				if err != nil {
					if ctx.Err() == nil {
						res.fail(r.Method + " " + err.Error())
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 201 && title != "":
					res.created.Store(title, true)
					res.ok.Add(1)
				case resp.StatusCode == 200:
					res.ok.Add(1)
				default:
					res.fail(fmt.Sprintf("%s %d", r.Method, resp.StatusCode))
				}
			}
		})
	}
	wg.Wait()
}

// replicaSet is three replicas on ports of their own, and their database.
type replicaSet struct {
	dsn      string
	env      []string
	ports    []int
	replicas []*proc
}

func startReplicaSet(t *testing.T, extra ...string) *replicaSet {
	t.Helper()
	_, dsn := migratedDB(t)
	rs := &replicaSet{dsn: dsn, env: replicaEnv(dsn, append([]string{"RATE_LIMIT_ENABLED=false"}, extra...)...)}
	for range 3 {
		port := freePort(t)
		rs.ports = append(rs.ports, port)
		rs.replicas = append(rs.replicas, startReplica(t, port, rs.env))
	}
	return rs
}

// signUpThrough registers email through base and returns a token for it.
func signUpThrough(t *testing.T, client *http.Client, base, email string) string {
	t.Helper()
	expectStatus(t, doRequestWith(t, client, base, req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": email, "password": "password-123"}}), 201)
	return doRequestWith(t, client, base, req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": "password-123"}}).str("access_token")
}

func countItems(t *testing.T, dsn string) int {
	t.Helper()
	db := mustOpen(t, dsn)
	var n int
	db.QueryRow(`SELECT count(*) FROM items`).Scan(&n)
	return n
}

// A rolling restart under a mixed load through nginx fails no request, and
// every write either answered 201 or was not applied.
func TestRollingRestartUnderLoad(t *testing.T) {
	rs := startReplicaSet(t)
	n := startNginx(t, rs.ports...)
	base := n.httpsURL()
	token := signUpThrough(t, n.client(""), base, "load@example.com")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := &loadResult{}
	done := make(chan struct{})
	go func() { mixedLoad(ctx, n.client(""), base, token, 8, res); close(done) }()
	loadStart := time.Now()
	time.Sleep(2 * time.Second)
	for i, port := range rs.ports {
		rs.replicas[i].cmd.Process.Signal(syscall.SIGTERM)
		if code := rs.replicas[i].wait(t); code != 0 {
			t.Errorf("replica %d exited %d on SIGTERM", i, code)
		}
		rs.replicas[i] = startReplica(t, port, rs.env)
		time.Sleep(2 * time.Second)
	}
	time.Sleep(time.Until(loadStart.Add(20 * time.Second))) // 20 s of load at least
	cancel()
	<-done
	created := 0
	res.created.Range(func(any, any) bool { created++; return true })
	t.Logf("rolling restart of 3 replicas under load: %d requests answered, %d failed, %d items created", res.ok.Load(), res.failed.Load(), created)
	if res.failed.Load() != 0 {
		t.Fatalf("%d requests failed during the rolling restart: %v", res.failed.Load(), res.failures)
	}
	if res.ok.Load() < 100 {
		t.Fatalf("only %d requests answered: the load did not run", res.ok.Load())
	}
	if rows := countItems(t, rs.dsn); rows != created {
		t.Fatalf("%d items in the database, %d answered 201: a write was applied without its answer (or lost)", rows, created)
	}
}

// kill -9 of one replica under the same load fails at most the requests in
// flight on it.
func TestKillOneReplicaUnderLoad(t *testing.T) {
	rs := startReplicaSet(t)
	n := startNginx(t, rs.ports...)
	base := n.httpsURL()
	token := signUpThrough(t, n.client(""), base, "kill@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	res := &loadResult{}
	const workers = 8
	done := make(chan struct{})
	go func() { mixedLoad(ctx, n.client(""), base, token, workers, res); close(done) }()
	time.Sleep(2 * time.Second)
	rs.replicas[1].cmd.Process.Signal(syscall.SIGKILL)
	rs.replicas[1].wait(t)
	<-done
	t.Logf("kill -9 of 1 of 3 replicas under load: %d answered, %d failed: %v", res.ok.Load(), res.failed.Load(), res.failures)
	if res.failed.Load() > workers {
		t.Fatalf("%d requests failed; at most the %d in flight on the killed replica may", res.failed.Load(), workers)
	}
}

// The throughput of 1, 2 and 3 replicas through nginx, measured in one
// run (informational: on 2 cores more replicas do not add capacity).
func TestReplicaThroughput(t *testing.T) {
	rs := startReplicaSet(t, "LOG_LEVEL=warn")
	var token string
	for k := 1; k <= 3; k++ {
		n := startNginx(t, rs.ports[:k]...)
		base := n.httpsURL()
		if token == "" {
			token = signUpThrough(t, n.client(""), base, "tp@example.com")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		res := &loadResult{}
		start := time.Now()
		mixedLoad(ctx, n.client(""), base, token, 16, res)
		cancel()
		t.Logf("%d replica(s) behind nginx: %.0f req/s (%d failed)", k, float64(res.ok.Load())/time.Since(start).Seconds(), res.failed.Load())
		if res.failed.Load() != 0 {
			t.Fatalf("%d failures: %v", res.failed.Load(), res.failures)
		}
	}
}
