package main

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// The limit is high enough that every check is a full check-and-count.
var benchPolicy = &policy{name: "api", limit: 1 << 30, window: time.Minute}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return keys
}

func BenchmarkAllowHotKey(b *testing.B) {
	s := newMemoryStore(100_000, benchPolicy)
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.take(ctx, benchPolicy, "203.0.113.7", now, true)
	}
}

func BenchmarkAllowHotKeyParallel(b *testing.B) {
	s := newMemoryStore(100_000, benchPolicy)
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.take(ctx, benchPolicy, "203.0.113.7", now, true)
		}
	})
}

func BenchmarkAllowManyKeys(b *testing.B) {
	s := newMemoryStore(100_000, benchPolicy)
	keys := benchKeys(100_000)
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.take(ctx, benchPolicy, keys[i], now, true)
		if i++; i == len(keys) {
			i = 0
		}
	}
}

func BenchmarkAllowManyKeysParallel(b *testing.B) {
	s := newMemoryStore(100_000, benchPolicy)
	keys := benchKeys(100_000)
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.take(ctx, benchPolicy, keys[i], now, true)
			if i += 7; i >= len(keys) {
				i -= len(keys)
			}
		}
	})
}

// BenchmarkBytesPerKey reports the heap a tracked key costs, the key's
// own string included: 100,000 IPv4 keys, measured after a GC.
func BenchmarkBytesPerKey(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		s := newMemoryStore(n, benchPolicy)
		now := time.Now()
		for i := range n {
			key := "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
			s.take(context.Background(), benchPolicy, key, now, true)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/key")
		runtime.KeepAlive(s)
		b.StartTimer()
	}
}

// BenchmarkAllowPostgres is one check against the shared store, for scale.
func BenchmarkAllowPostgres(b *testing.B) {
	db, _ := migratedDB(b)
	s := &postgresStore{db: db, policies: []*policy{benchPolicy}}
	keys := benchKeys(1000)
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.take(ctx, benchPolicy, keys[i%len(keys)], now, true); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
