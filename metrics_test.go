package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// With PPROF_ENABLED, pprof is served on PPROF_ADDR (loopback) and still
// not on the metrics listener; a PPROF_ADDR off loopback does not start.
func TestPprofOnlyOnLoopback(t *testing.T) {
	_, dsn := newTestDB(t)
	rn := startRun(t, map[string]string{"DATABASE_URL": dsn, "PPROF_ENABLED": "true", "PPROF_ADDR": "127.0.0.1:0"})
	listening := func(msg string) string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			for _, l := range rn.logs.linesWith(t, "msg", msg) {
				return l["addr"].(string)
			}
		}
		t.Fatalf("no %q line", msg)
		return ""
	}
	pprofAddr, metricsAddr := listening("pprof listening"), listening("metrics listening")
	if host, _, _ := net.SplitHostPort(pprofAddr); host != "127.0.0.1" {
		t.Fatalf("pprof listens on %s", pprofAddr)
	}
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("pprof index: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + metricsAddr + "/debug/pprof/"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("pprof on the metrics listener: %v %v", resp, err)
	}
	for _, addr := range []string{":6060", "0.0.0.0:6060", "10.1.2.3:6060", "[::]:6060", "6060"} {
		if _, err := loadConfig(envOf("PPROF_ENABLED", "true", "PPROF_ADDR", addr)); err == nil || !strings.Contains(err.Error(), "PPROF_ADDR:") {
			t.Errorf("PPROF_ADDR=%s was taken: %v", addr, err)
		}
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

// Counters and histograms are updated without a lock from many goroutines
// at once, new series included: nothing is lost, a histogram's count is the
// sum of its buckets, its sum is exact, and a value on a bound counts in
// that bound's bucket (le).
func TestMetricVectorsConcurrent(t *testing.T) {
	m := newMetrics("v", "c")
	routes := []string{"GET /a", "GET /b", "POST /c", "DELETE /d"}
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				route := routes[(w+i)%len(routes)]
				m.observe(route, "GET", 200+(i%3), time.Duration(i%7)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	var b strings.Builder
	m.write(&b)
	cmd := exec.Command(needTool(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(b.String(), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			samples[line[:i]], _ = strconv.ParseFloat(line[i+1:], 64)
		}
	}
	var requests, count, sum float64
	for series, v := range samples {
		switch {
		case strings.HasPrefix(series, "http_requests_total{"):
			requests += v
		case strings.HasPrefix(series, "http_request_duration_seconds_count{"):
			count += v
			route := series[len("http_request_duration_seconds_count"):]
			inf := samples["http_request_duration_seconds_bucket"+strings.TrimSuffix(route, "}")+`,le="+Inf"}`]
			if inf != v {
				t.Errorf("%s: count %v, +Inf bucket %v", route, v, inf)
			}
		case strings.HasPrefix(series, "http_request_duration_seconds_sum{"):
			sum += v
		}
	}
	// Each worker's i runs over 0..each-1: per worker, the i%7 milliseconds sum to this.
	var perWorkerMs int
	for i := range each {
		perWorkerMs += i % 7
	}
	if requests != workers*each || count != workers*each {
		t.Fatalf("%v requests and %v observations counted, want %d", requests, count, workers*each)
	}
	if want := float64(workers*perWorkerMs) / 1000; math.Abs(sum-want) > 1e-9 {
		t.Fatalf("duration sum %v, want %v", sum, want)
	}
	// 5 ms is the 0.005 bound itself: it counts there, not in the next bucket.
	h := newHistogramVec("x_seconds", "x", []float64{0.001, 0.005, 0.01}, "k")
	h.observe(5*time.Millisecond, "a")
	h.observe(5*time.Millisecond+time.Nanosecond, "a")
	b.Reset()
	bw := bufio.NewWriter(&b)
	writeHistograms(bw, h)
	bw.Flush()
	got := map[string]float64{}
	for _, line := range strings.Split(b.String(), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			got[line[:i]], _ = strconv.ParseFloat(line[i+1:], 64)
		}
	}
	if got[`x_seconds_bucket{k="a",le="0.005"}`] != 1 || got[`x_seconds_bucket{k="a",le="0.01"}`] != 2 {
		t.Fatalf("bounds: %v", got)
	}
}
