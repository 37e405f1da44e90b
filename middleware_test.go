package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestIDAcceptReplaceGenerate(t *testing.T) {
	a := newTestApp(t, nil)
	long := strings.Repeat("a", 128)
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"valid id is echoed", "abc-123_X.y", true},
		{"128 characters is echoed", long, true},
		{"129 characters is replaced", long + "a", false},
		{"spaces are replaced", "abc def", false},
		{"header injection is replaced", "abc\"},{\"x\":1", false},
		{"unicode is replaced", "ïd", false},
		{"absent is generated", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.sent != "" {
				h["X-Request-ID"] = tt.sent
			}
			r := a.do(req{method: "GET", path: "/api/v1/health/live", header: h})
			got := r.header.Get("X-Request-ID")
			if tt.keep {
				if got != tt.sent {
					t.Fatalf("X-Request-ID=%q, want %q", got, tt.sent)
				}
				return
			}
			if got == tt.sent || len(got) != 32 || !isLowerHex(got) {
				t.Fatalf("X-Request-ID=%q, want 32 fresh hex characters", got)
			}
		})
	}
	seen := map[string]bool{}
	for range 10000 {
		id := newRequestID()
		if seen[id] {
			t.Fatalf("request id %s generated twice", id)
		}
		seen[id] = true
	}
	// The id ends up in the access line.
	r := a.do(req{method: "GET", path: "/api/v1/items", header: map[string]string{"X-Request-ID": "trace-me-42"}})
	expectProblem(t, r, 401, "unauthorized")
	lines := a.logs.linesWith(t, "request_id", "trace-me-42")
	if len(lines) != 1 || lines[0]["msg"] != "request" || lines[0]["status"] != float64(401) {
		t.Fatalf("access lines for trace-me-42: %v", lines)
	}
}

func TestTraceparent(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"valid", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"future version with extra field", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"all-zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ""},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
		{"upper-case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", ""},
		{"too short", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", ""},
		{"version 00 with trailing data", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", ""},
		{"garbage", "hello", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := traceIDFrom(tt.header); got != tt.want {
				t.Fatalf("traceIDFrom(%q)=%q, want %q", tt.header, got, tt.want)
			}
		})
	}
	a := newTestApp(t, nil)
	a.do(req{method: "GET", path: "/api/v1/nope", header: map[string]string{"X-Request-ID": "tp-1", "Traceparent": tests[0].header}})
	lines := a.logs.linesWith(t, "request_id", "tp-1")
	if len(lines) != 1 || lines[0]["trace_id"] != tests[0].want {
		t.Fatalf("trace_id not logged: %v", lines)
	}
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	a := newTestApp(t, nil)
	for _, r := range []req{
		{method: "GET", path: "/api/v1/health/live"},
		{method: "GET", path: "/api/v1/items"},
		{method: "GET", path: "/api/v1/nowhere"},
		{method: "PUT", path: "/api/v1/items"},
		{method: "POST", path: "/api/v1/auth/login", body: "{"},
	} {
		resp := a.do(r)
		want := map[string]string{
			"Cache-Control":                "no-store",
			"X-Content-Type-Options":       "nosniff",
			"Content-Security-Policy":      "default-src 'none'; frame-ancestors 'none'",
			"Referrer-Policy":              "no-referrer",
			"X-Frame-Options":              "DENY",
			"Cross-Origin-Resource-Policy": "same-origin",
		}
		for k, v := range want {
			if got := resp.header.Get(k); got != v {
				t.Errorf("%s %s: %s=%q, want %q", r.method, r.path, k, got, v)
			}
		}
		if resp.header.Get("Server") != "" {
			t.Errorf("%s %s: Server header sent", r.method, r.path)
		}
		if !strings.Contains(strings.Join(resp.header.Values("Vary"), ","), "Origin") {
			t.Errorf("%s %s: no Vary: Origin", r.method, r.path)
		}
	}
}

func TestCORS(t *testing.T) {
	a := newTestApp(t, map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com"})
	pre := a.do(req{method: "OPTIONS", path: "/api/v1/items", header: map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}})
	expectStatus(t, pre, http.StatusNoContent)
	if pre.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight headers: %v", pre.header)
	}
	if pre.header.Get("RateLimit") != "" {
		t.Fatal("a preflight was rate limited")
	}
	bad := a.do(req{method: "OPTIONS", path: "/api/v1/items", header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}})
	if !strings.Contains(bad.str("detail"), "CORS_ALLOWED_ORIGINS") {
		t.Fatalf("a refused origin's problem should name CORS_ALLOWED_ORIGINS: %s", bad.body)
	}
	expectProblem(t, bad, http.StatusForbidden, "forbidden")
	if bad.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("disallowed origin got an allow header")
	}
	simple := a.do(req{method: "GET", path: "/api/v1/health/live", header: map[string]string{"Origin": "https://app.example.com"}})
	if simple.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(simple.header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Fatalf("simple request CORS headers: %v", simple.header)
	}
	other := a.do(req{method: "GET", path: "/api/v1/health/live", header: map[string]string{"Origin": "https://evil.example"}})
	if other.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("disallowed origin allowed")
	}
}

func TestPanicBecomesProblemAndOneLogLine(t *testing.T) {
	var logs logBuffer
	cfg := devConfig(t, nil)
	h := withMiddleware(newLogger(&logs, slog.LevelDebug), cfg, newMetrics("test", "test"), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom: secret internals")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	r := doRequest(t, srv.URL, req{method: "GET", path: "/x", header: map[string]string{"X-Request-ID": "panic-1"}})
	expectProblem(t, r, 500, "internal")
	if strings.Contains(string(r.body), "boom") || strings.Contains(string(r.body), "goroutine") {
		t.Fatalf("500 leaks internals: %s", r.body)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatal("security headers missing on a panic")
	}
	lines := logs.linesWith(t, "request_id", "panic-1")
	if len(lines) != 1 {
		t.Fatalf("want one log line for the panic, got %d: %v", len(lines), lines)
	}
	l := lines[0]
	if l["level"] != "ERROR" || !strings.Contains(l["error"].(string), "boom") || !strings.Contains(l["stack"].(string), "goroutine") {
		t.Fatalf("panic line lacks error or stack: %v", l)
	}
}

// The access line is built without a slog.Record when the handler is ours;
// through any other handler it is a record with the same fields.
func TestAccessLineSameThroughAnyHandler(t *testing.T) {
	cfg := devConfig(t, nil)
	panics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	var ours, theirs logBuffer
	var lines []map[string]any
	for _, logger := range []*slog.Logger{newLogger(&ours, slog.LevelDebug), slog.New(slog.NewJSONHandler(&theirs, nil))} {
		srv := httptest.NewServer(withMiddleware(logger, cfg, newMetrics("test", "test"), nil, panics))
		doRequest(t, srv.URL, req{method: "GET", path: "/x?q=1", header: map[string]string{"User-Agent": "probe/1"}})
		srv.Close()
	}
	lines = append(ours.lines(t), theirs.lines(t)...)
	if len(lines) != 2 {
		t.Fatalf("want one line from each handler, got %v", lines)
	}
	for _, l := range lines {
		for _, k := range []string{"duration_ms", "stack", "time"} {
			if _, ok := l[k]; !ok {
				t.Fatalf("no %s in %v", k, l)
			}
			delete(l, k)
		}
	}
	if lines[0]["request_id"] == nil {
		t.Fatalf("our line has no request_id: %v", lines[0])
	}
	delete(lines[0], "request_id") // the context's ids are our handler's, on every line
	want := map[string]any{"level": "ERROR", "msg": "request", "method": "GET", "route": "unmatched", "path": "/x", "status": float64(500),
		"client_ip": "127.0.0.1", "user_agent": "probe/1", "error": "panic: boom"}
	for i, l := range lines {
		for k, v := range want {
			if l[k] != v {
				t.Errorf("line %d: %s=%v, want %v", i, k, l[k], v)
			}
		}
		if l["bytes"] != lines[0]["bytes"] || len(l) != len(want)+1 {
			t.Errorf("line %d has other fields: %v", i, l)
		}
	}
}

// From SIGTERM on, every answer says Connection: close, so a proxy's
// keep-alive connections end after their next response.
func TestDrainingAnswersConnectionClose(t *testing.T) {
	a := newTestApp(t, nil)
	connection := func() string { // the client takes the header for itself; read the server's
		rec := httptest.NewRecorder()
		a.handle.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/health/live", nil))
		return rec.Header().Get("Connection")
	}
	if got := connection(); got == "close" {
		t.Fatal("Connection: close before draining")
	}
	a.deps.health.draining.Store(true)
	if got := connection(); got != "close" {
		t.Fatalf("Connection %q while draining, want close", got)
	}
}

// The decision is taken when the answer starts, not when the request
// arrived: a request already running at SIGTERM, and one whose handler
// writes nothing (net/http sends the 200), close their connections too.
func TestDrainingClosesRequestsRunningAtSIGTERM(t *testing.T) {
	life := &healthState{}
	running, release := make(chan struct{}), make(chan struct{})
	h := withMiddleware(newLogger(io.Discard, slog.LevelInfo), devConfig(t, nil), newMetrics("test", "test"), life,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				close(running)
				<-release
				w.Write([]byte("done"))
			}
		}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/slow")
		if err != nil {
			t.Error(err)
		}
		answer <- resp
	}()
	<-running
	life.draining.Store(true)
	close(release)
	resp := <-answer
	if resp == nil {
		t.FailNow()
	}
	resp.Body.Close()
	if !resp.Close {
		t.Fatalf("a request running at SIGTERM kept its connection: Connection %q", resp.Header.Get("Connection"))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/empty", nil))
	if got := rec.Header().Get("Connection"); got != "close" {
		t.Fatalf("an answer with nothing written while draining: Connection %q, want close", got)
	}
}
