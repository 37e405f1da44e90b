package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// trivial is the baseline handler: what a request costs with no middleware.
var trivial = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"ok":true}`))
})

// discardWriter stands in for the connection: it keeps no copy of what is
// written (httptest.ResponseRecorder clones the header map on every
// response, which would dominate the measurement).
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchRequest is the request every chain benchmark sends.
func benchRequest() *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/items?limit=20", nil)
	r.RemoteAddr = "203.0.113.7:51234"
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("X-Request-ID", "bench-request-id")
	return r
}

func benchHandler(b *testing.B, h http.Handler) {
	r := benchRequest()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkBareHandler(b *testing.B) { benchHandler(b, trivial) }

// BenchmarkMiddlewareChain is the full chain, access line included (JSON to
// io.Discard at info level, as in production).
func BenchmarkMiddlewareChain(b *testing.B) {
	cfg := devConfig(b, nil)
	benchHandler(b, withMiddleware(newLogger(io.Discard, slog.LevelInfo), cfg, newMetrics("test", "test"), nil, trivial))
}

// BenchmarkMiddlewareChainFreshID is the chain when the caller sends no
// request id and one is generated.
func BenchmarkMiddlewareChainFreshID(b *testing.B) {
	cfg := devConfig(b, nil)
	h := withMiddleware(newLogger(io.Discard, slog.LevelInfo), cfg, newMetrics("test", "test"), nil, trivial)
	r := httptest.NewRequest("GET", "/api/v1/items", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkMiddlewareChainQuiet is the chain with the access line filtered
// out (LOG_LEVEL=warn and a 200): what the JSON line itself costs is the
// difference from BenchmarkMiddlewareChain.
func BenchmarkMiddlewareChainQuiet(b *testing.B) {
	cfg := devConfig(b, nil)
	benchHandler(b, withMiddleware(newLogger(io.Discard, slog.LevelWarn), cfg, newMetrics("test", "test"), nil, trivial))
}

// BenchmarkMiddlewareChainParallel is the full chain on every core at once,
// as a server runs it: what the requests' shared state (metrics, the log's
// buffer) costs when they contend for it. ns/op is per request, so on N
// cores a chain that shares nothing would measure about 1/N of
// BenchmarkMiddlewareChain.
func BenchmarkMiddlewareChainParallel(b *testing.B) {
	cfg := devConfig(b, nil)
	h := withMiddleware(newLogger(io.Discard, slog.LevelInfo), cfg, newMetrics("test", "test"), nil, trivial)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, w := benchRequest(), &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}
