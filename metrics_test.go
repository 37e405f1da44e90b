package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// scrape reads /metrics and returns the text and its samples by series.
func scrape(t *testing.T, addr string) (string, map[string]float64) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("Content-Type %q", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return string(body), samples
}

// A real scrape after mixed traffic passes promtool, moves the series the
// traffic should move, and keeps route labels bounded whatever paths come.
func TestMetricsScrape(t *testing.T) {
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "RATE_LIMIT_AUTH_REQUESTS": "3", "SHUTDOWN_DELAY": "0s"})
	waitReady(t, rn.url())
	var addr string
	for _, l := range rn.logs.linesWith(t, "msg", "metrics listening") {
		addr = l["addr"].(string)
	}
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	_, before := scrape(t, addr)

	doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/register", body: map[string]any{"email": "m@example.com", "password": "password-123"}})
	doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "m@example.com", "password": "password-123"}})
	doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "m@example.com", "password": "wrong-password"}})
	expectProblem(t, doRequest(t, rn.url(), req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "m@example.com", "password": "password-123"}}), 429, "rate_limited")
	for range 1000 {
		resp, err := http.Get(rn.url() + fmt.Sprintf("/api/v1/%x/%d", rand.Uint64(), rand.IntN(1e6)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	text, after := scrape(t, addr)
	cmd := exec.Command(needTool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out, text)
	}
	for series, want := range map[string]float64{
		`ratelimit_decisions_total{policy="auth",result="refused"}`:                       1,
		`password_hash_duration_seconds_count`:                                            3, // register, login, wrong login
		`http_requests_total{route="POST /api/v1/auth/login",method="POST",status="429"}`: 1,
		`http_requests_total{route="unmatched",method="GET",status="404"}`:                1000,
	} {
		if got := after[series] - before[series]; got < want {
			t.Errorf("%s moved by %v, want at least %v", series, got, want)
		}
	}
	routes := map[string]bool{}
	for series := range after {
		if strings.HasPrefix(series, "http_requests_total{") {
			routes[series[strings.Index(series, `route="`):strings.Index(series, `",method`)]] = true
		}
	}
	if len(routes) > 10 {
		t.Fatalf("%d route labels after 1,000 random paths: %v", len(routes), routes)
	}
	for _, name := range []string{"db_pool_open_connections", "db_pool_waits_total", "http_requests_in_flight", "password_hashes_running", "password_hashes_waiting",
		`ratelimit_tracked_keys{policy="auth"}`, "go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_cycles_total", `db_pool_closed_total{reason="max_idle"}`} {
		if _, ok := after[name]; !ok {
			t.Errorf("no series %s", name)
		}
	}
	if !strings.Contains(text, "build_info{version=") {
		t.Error("no build_info")
	}
	// pprof only when asked for.
	if resp, err := http.Get("http://" + addr + "/debug/pprof/"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("pprof without PPROF_ENABLED: %v %v", resp, err)
	}
}

func TestPprofWhenEnabled(t *testing.T) {
	srv := metricsHandler(newMetrics("v", "c"), true)
	rec := newRecorder()
	srv.ServeHTTP(rec, mustRequest("GET", "/debug/pprof/"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatalf("pprof index: %d", rec.Code)
	}
}

func TestMetricLabelsAreEscaped(t *testing.T) {
	m := newMetrics("1.0 \"quoted\"", "a\\b\nc")
	var b strings.Builder
	m.write(&b)
	if !strings.Contains(b.String(), `build_info{version="1.0 \"quoted\"",commit="a\\b\nc",`) {
		t.Fatalf("labels not escaped:\n%s", b.String())
	}
	cmd := exec.Command(needTool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
}
