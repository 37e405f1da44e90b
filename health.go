package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

// healthState is what /health reports: the build, the uptime, whether the
// schema is ready and whether the server is draining.
type healthState struct {
	db       *sql.DB
	version  string
	commit   string
	started  time.Time
	ready    atomic.Bool   // migrations applied
	readyCh  chan struct{} // closed when ready
	draining atomic.Bool   // SIGTERM received
	cutOff   atomic.Bool   // the shutdown timeout passed: requests still running are cut off
}

type healthCheck struct {
	Status    string     `json:"status"`
	LatencyMS float64    `json:"latency_ms"`
	Output    string     `json:"output,omitempty"`
	Pool      *poolStats `json:"pool,omitempty"`
}

// poolStats is the database pool's state: how full it is, how often a
// request waited for a connection, and why connections were closed (a
// steady rise in closed_max_idle means the pool churns under load).
type poolStats struct {
	MaxOpen        int     `json:"max_open"`
	Open           int     `json:"open"`
	InUse          int     `json:"in_use"`
	Idle           int     `json:"idle"`
	Waits          int64   `json:"waits"`
	WaitMS         float64 `json:"wait_ms"`
	ClosedMaxIdle  int64   `json:"closed_max_idle"`
	ClosedIdleTime int64   `json:"closed_idle_time"`
	ClosedLifetime int64   `json:"closed_lifetime"`
}

func poolStatsOf(db *sql.DB) *poolStats {
	s := db.Stats()
	return &poolStats{
		MaxOpen: s.MaxOpenConnections, Open: s.OpenConnections, InUse: s.InUse, Idle: s.Idle,
		Waits: s.WaitCount, WaitMS: float64(s.WaitDuration.Microseconds()) / 1000,
		ClosedMaxIdle: s.MaxIdleClosed, ClosedIdleTime: s.MaxIdleTimeClosed, ClosedLifetime: s.MaxLifetimeClosed,
	}
}

type healthDoc struct {
	Status        string                 `json:"status"`
	Version       string                 `json:"version"`
	Commit        string                 `json:"commit"`
	UptimeSeconds int64                  `json:"uptime_seconds"`
	Output        string                 `json:"output,omitempty"`
	Checks        map[string]healthCheck `json:"checks"`
}

const healthContentType = "application/health+json"

// handleHealth is the readiness probe: the database answers within a short
// timeout with the schema this build expects, and the server is not
// draining. During an upgrade, a replica whose code is newer than the
// schema fails it until the migration is done.
func handleHealth(h *healthState, s *store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		err := h.db.PingContext(ctx)
		check := healthCheck{Status: "pass", LatencyMS: math.Round(float64(time.Since(start).Microseconds())/10) / 100, Pool: poolStatsOf(h.db)}
		switch {
		case err != nil:
			check.Status, check.Output = "fail", "database unreachable"
			if st := stateFrom(r.Context()); st != nil {
				st.err = err
			}
		case !h.ready.Load():
			check.Status, check.Output = "fail", "database schema not migrated yet"
		default:
			if err := s.checkSchema(ctx); err != nil {
				check.Status, check.Output = "fail", "database schema not current"
				if st := stateFrom(r.Context()); st != nil {
					st.err = err
				}
			}
		}
		doc := healthDoc{
			Status:        check.Status,
			Version:       h.version,
			Commit:        h.commit,
			UptimeSeconds: int64(time.Since(h.started).Seconds()),
			Checks:        map[string]healthCheck{"database": check},
		}
		if h.draining.Load() {
			doc.Status, doc.Output = "fail", "shutting down"
		}
		status := http.StatusOK
		if doc.Status != "pass" {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, healthContentType, doc)
	})
}

// handleLive is the liveness probe: the process answers. It never touches
// the database, so a database outage does not get the container restarted.
func handleLive() http.Handler {
	body := []byte(`{"status":"pass"}` + "\n") // the one answer, encoded once
	contentType := []string{healthContentType}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http adds Content-Length itself to a body this small written
		// whole, without a map entry or parsing it back.
		w.Header()["Content-Type"] = contentType
		w.Write(body)
	})
}

// healthcheck is the -healthcheck flag: the image has no shell or curl, so
// Docker's HEALTHCHECK runs the binary itself.
func healthcheck(ctx context.Context, port int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/health", port)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return exitError{code: 1, err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return exitError{code: 1, err: fmt.Errorf("healthcheck: %w", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return exitError{code: 1, err: fmt.Errorf("healthcheck: %s: %s", resp.Status, body)}
	}
	return nil
}
