package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/slogtest"
	"time"
)

// The handler passes the standard library's own conformance test.
func TestLogHandlerConformance(t *testing.T) {
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return newJSONHandler(newLineWriter(&buf), slog.LevelDebug)
	}, func(t *testing.T) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatalf("not one JSON object: %q", buf.String())
		}
		return m
	})
}

// Every line is valid JSON that encoding/json reads back to the same
// values, whatever the strings hold.
func FuzzLogLineIsJSON(f *testing.F) {
	for _, s := range []string{"plain", `quo"te`, "back\\slash", "nl\nline", "\x00\x01\x1f", "\xff\xfe invalid", "\u2028\u2029", "<script>&", "é☃𝄞", ""} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		var buf bytes.Buffer
		logger := slog.New(newJSONHandler(newLineWriter(&buf), slog.LevelDebug))
		logger.With("pre", value).WithGroup("g").Info(value, key, value, "n", 42, "err", errors.New(value), "list", []string{value})
		line := buf.Bytes()
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		std, _ := json.Marshal(value) // encoding/json's reading of the same string
		var want string
		json.Unmarshal(std, &want)
		g, _ := m["g"].(map[string]any)
		if m["msg"] != want || m["pre"] != want || g == nil || g["err"] != want || g["n"] != float64(42) {
			t.Fatalf("read back %v from %q", m, line)
		}
		stdKey, _ := json.Marshal(key)
		var wantKey string
		json.Unmarshal(stdKey, &wantKey)
		if key != "" && g[wantKey] != want && key != "n" && key != "err" && key != "list" {
			t.Fatalf("key %q: read back %v", key, m)
		}
		// The same bytes as encoding/json for the string itself.
		if got := appendString(nil, value); !bytes.Equal(got, std) {
			t.Fatalf("appendString(%q) = %s, encoding/json %s", value, got, std)
		}
	})
}

// TestTimeFieldMatchesTimeFormat compares the hand-written time field with
// time.Format for random instants, in zones other than UTC too.
func TestTimeFieldMatchesTimeFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	zone := time.FixedZone("east", 5*3600+1800)
	for range 10_000 {
		at := time.Unix(rng.Int64N(250_000_000_000)-60_000_000_000, rng.Int64N(1e9)).In(zone)
		want := at.UTC().Format("2006-01-02T15:04:05.000000Z")
		if got := string(appendTimeUTC(nil, at)); got != want {
			t.Fatalf("%v: %s, want %s", at, got, want)
		}
	}
}

func TestLogValuesOfEveryKind(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(newJSONHandler(newLineWriter(&buf), slog.LevelInfo))
	st := &requestState{id: "rid-1", traceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	logger.InfoContext(withState(context.Background(), st), "kinds",
		"i", -3, "u", uint64(7), "f", 1.5, "nan", math.NaN(), "b", true, "d", 2*time.Second,
		"t", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "any", map[string]int{"x": 1}, "cfg", config{Env: "development"})
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	for k, want := range map[string]any{"request_id": "rid-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "i": float64(-3), "u": float64(7), "f": 1.5,
		"nan": "NaN", "b": true, "d": float64(2e9), "t": "2026-01-02T03:04:05Z"} {
		if m[k] != want {
			t.Errorf("%s=%v, want %v", k, m[k], want)
		}
	}
	if cfg, _ := m["cfg"].(map[string]any); cfg == nil || cfg["app_env"] != "development" {
		t.Errorf("a LogValuer was not resolved: %v", m["cfg"])
	}
	// Debug is below the level: nothing written.
	buf.Reset()
	logger.Debug("hidden")
	if buf.Len() != 0 {
		t.Fatalf("debug line at info: %q", buf.String())
	}
}

// The buffered writer flushes on its own within the interval, and on Close.
func TestBufferedLogLinesArriveAndNothingIsLost(t *testing.T) {
	var out logBuffer
	lw := newBufferedLineWriter(&out, 20*time.Millisecond)
	logger := slog.New(newJSONHandler(lw, slog.LevelInfo))
	logger.Info("first")
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(out.String(), "first") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "first") {
		t.Fatal("a buffered line never arrived")
	}
	for i := range 5000 {
		logger.Info("many", "i", i, "pad", strings.Repeat("x", 100))
	}
	lw.Close()
	if n := len(out.lines(t)); n != 5001 {
		t.Fatalf("%d lines after Close, want 5001", n)
	}
}

// BenchmarkLogAccessLine is one access line of ten attributes through our
// handler; BenchmarkLogAccessLineStdlib the same through slog's JSON handler.
func BenchmarkLogAccessLine(b *testing.B) {
	benchAccessLine(b, newJSONHandler(newLineWriter(io.Discard), slog.LevelInfo))
}

func BenchmarkLogAccessLineStdlib(b *testing.B) {
	benchAccessLine(b, slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func benchAccessLine(b *testing.B, h slog.Handler) {
	ctx := withState(context.Background(), &requestState{id: "3f2a9c0d1b7e4f6a8c5d2e1f0a9b8c7d"})
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("method", "GET"), slog.String("route", "GET /api/v1/items"), slog.String("path", "/api/v1/items"),
		slog.Int("status", 200), slog.Int64("bytes", 734), slog.Float64("duration_ms", 1.634),
		slog.String("client_ip", "203.0.113.7"), slog.String("user_agent", "Mozilla/5.0 (X11; Linux x86_64)"),
		slog.String("user_id", "7b0c6a52-3e4f-4c1b-9a0e-2f5d8c9b1a23"), slog.String("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
	)
	b.ReportAllocs()
	for b.Loop() {
		h.Handle(ctx, r)
	}
}
