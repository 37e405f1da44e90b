package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// newConnections drives 12 concurrent clients (bounded: 3 s), each doing
// other work between queries as a request handler does, on a pool
// opened as the service opens it, and returns how many PostgreSQL sessions
// the database counted meanwhile: the pool's growth to its maximum, plus
// whatever it closed and reopened.
func newConnections(t *testing.T, env map[string]string) int64 {
	t.Helper()
	_, dsn := newTestDB(t)
	env["DATABASE_URL"] = dsn
	cfg := devConfig(t, env)
	db, err := openDB(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := dsn[len(dsn)-len("test_000000000000?sslmode=disable") : len(dsn)-len("?sslmode=disable")]
	admin := sqlOpenAdmin(t)
	sessions := func() int64 {
		time.Sleep(1200 * time.Millisecond) // statistics are flushed about once a second
		var n int64
		if err := admin.QueryRow(`SELECT sessions FROM pg_stat_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	load := func(d time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				for j := 0; ctx.Err() == nil; j++ {
					var one int
					db.QueryRowContext(ctx, `SELECT 1 FROM pg_sleep(0.0005)`).Scan(&one)
					time.Sleep(time.Duration((i+j)%4) * 500 * time.Microsecond) // decoding, encoding, the network
				}
			})
		}
		wg.Wait()
	}
	before := sessions()
	load(3 * time.Second)
	return sessions() - before
}

// Under a steady load the pool keeps its connections; with idle below open
// it churns (the control: the measurement can fail).
func TestPoolDoesNotChurnUnderLoad(t *testing.T) {
	const open = 16
	held := newConnections(t, map[string]string{"DB_MAX_OPEN_CONNS": strconv.Itoa(open)})
	if held > open+2 {
		t.Fatalf("%d connections opened in 3 s of steady load, want at most the pool's %d (+2): it churns", held, open)
	}
	churned := newConnections(t, map[string]string{"DB_MAX_OPEN_CONNS": strconv.Itoa(open), "DB_MAX_IDLE_CONNS": "2"})
	if churned <= open+10 {
		t.Fatalf("the control (idle 2 < open %d) opened only %d connections; the measurement cannot tell churn", open, churned)
	}
	t.Logf("connections opened in 3 s of load on a pool of %d: %d with idle = open, %d with idle 2", open, held, churned)
}

func TestPoolConfig(t *testing.T) {
	cfg := devConfig(t, map[string]string{"DB_MAX_OPEN_CONNS": "7"})
	if cfg.DBMaxIdleConns != 7 || cfg.DBConnMaxLifetime != time.Hour || cfg.DBConnMaxIdleTime != 30*time.Minute {
		t.Fatalf("pool defaults: idle %d lifetime %v idle time %v", cfg.DBMaxIdleConns, cfg.DBConnMaxLifetime, cfg.DBConnMaxIdleTime)
	}
	_, err := loadConfig(envOf("DB_MAX_OPEN_CONNS", "5", "DB_MAX_IDLE_CONNS", "6"))
	if err == nil || !strings.Contains(err.Error(), "DB_MAX_IDLE_CONNS: 6 is above DB_MAX_OPEN_CONNS (5)") {
		t.Fatalf("idle above open: %v", err)
	}
	for range 100 {
		if j := jitter(time.Hour, 0.1); j > time.Hour || j < 54*time.Minute {
			t.Fatalf("jitter(1h, 10%%) = %v", j)
		}
	}
}

// /health reports the pool beside the database's latency.
func TestHealthReportsThePool(t *testing.T) {
	a := newTestApp(t, nil)
	r := a.do(req{method: "GET", path: "/api/v1/health"})
	pool, _ := r.json["checks"].(map[string]any)["database"].(map[string]any)["pool"].(map[string]any)
	if pool == nil || pool["open"] == nil || pool["waits"] == nil || pool["closed_max_idle"] == nil {
		t.Fatalf("health lacks the pool: %s", r.body)
	}
}
