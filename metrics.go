package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The metrics registry, hand-written for the Prometheus text exposition
// format 0.0.4: counters and histograms keyed by their label values, gauges
// read when scraped. Label values come from bounded sets only (route
// patterns, methods, statuses, policy names), never from raw paths.

// labelValues is a series' label values (at most three), a map key that
// costs no allocation to build.
type labelValues [3]string

func labelsOf(values []string) (k labelValues) {
	copy(k[:], values)
	return k
}

// seriesMap finds a vector's series by their label values; every answered
// request looks one up, and label values come from bounded sets, so a new
// series is rare.
type seriesMap[T any] struct {
	mu  sync.RWMutex
	all map[labelValues]*T
}

// get returns the series for key, made by fresh the first time.
func (s *seriesMap[T]) get(key labelValues, fresh func() *T) *T {
	s.mu.RLock()
	v, ok := s.all[key]
	s.mu.RUnlock()
	if ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.all[key]; ok {
		return v // another request added it first
	}
	if s.all == nil {
		s.all = map[labelValues]*T{}
	}
	v = fresh()
	s.all[key] = v
	return v
}

// snapshot is a copy of every series so far, for a scrape.
func (s *seriesMap[T]) snapshot() map[labelValues]*T {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.all)
}

// counterVec is a counter per combination of label values.
type counterVec struct {
	name, help string
	labels     []string
	series     seriesMap[atomic.Uint64]
}

func newCounterVec(name, help string, labels ...string) *counterVec {
	return &counterVec{name: name, help: help, labels: labels}
}

func (c *counterVec) add(n uint64, values ...string) {
	c.series.get(labelsOf(values), func() *atomic.Uint64 { return new(atomic.Uint64) }).Add(n)
}

// histogramVec is a histogram of durations with fixed buckets per
// combination of label values.
type histogramVec struct {
	name, help string
	labels     []string
	buckets    []float64       // upper bounds in seconds, as exported
	bounds     []time.Duration // the same bounds, compared with each observation
	series     seriesMap[histogram]
}

// histogram counts with atomic additions only, so observations on several
// cores never wait for each other. Its count is the sum of its buckets, so
// a scrape always sees the two agree; the sum may miss an observation that
// is counted, for the instant between the two additions.
type histogram struct {
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNs  atomic.Int64    // exact, where adding float seconds would round
}

func newHistogramVec(name, help string, buckets []float64, labels ...string) *histogramVec {
	bounds := make([]time.Duration, len(buckets))
	for i, b := range buckets {
		bounds[i] = time.Duration(math.Round(b * float64(time.Second)))
	}
	return &histogramVec{name: name, help: help, labels: labels, buckets: buckets, bounds: bounds}
}

func (h *histogramVec) observe(d time.Duration, values ...string) {
	hist := h.series.get(labelsOf(values), func() *histogram {
		return &histogram{counts: make([]atomic.Uint64, len(h.bounds)+1)}
	})
	i, _ := slices.BinarySearch(h.bounds, d) // le: a value on a bound counts in it
	hist.counts[i].Add(1)
	hist.sumNs.Add(int64(d))
}

// gauge is read when scraped.
type gauge struct {
	name, help, kind string // kind: gauge or counter (a value kept elsewhere)
	labels           []string
	read             func() []gaugeValue
}

type gaugeValue struct {
	labels []string
	value  float64
}

func one(v float64) []gaugeValue { return []gaugeValue{{value: v}} }

// metrics is every series the service exports.
type metrics struct {
	requests        *counterVec
	duration        *histogramVec
	inFlight        atomic.Int64
	limitDecisions  *counterVec
	hashDuration    *histogramVec
	sessionsRevoked *counterVec
	mailsSent       *counterVec
	mfaChallenges   *counterVec
	gauges          []gauge
}

var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newMetrics(version, commit string) *metrics {
	m := &metrics{
		requests:        newCounterVec("http_requests_total", "HTTP requests answered, by route pattern, method and status.", "route", "method", "status"),
		duration:        newHistogramVec("http_request_duration_seconds", "Time to answer an HTTP request, by route pattern.", latencyBuckets, "route"),
		limitDecisions:  newCounterVec("ratelimit_decisions_total", "Rate-limit decisions, by policy and result (allowed, refused).", "policy", "result"),
		hashDuration:    newHistogramVec("password_hash_duration_seconds", "Time to derive one password hash (PBKDF2), waiting for a slot included.", []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}),
		sessionsRevoked: newCounterVec("sessions_revoked_total", "Sessions ended before their expiry, by reason.", "reason"),
		mailsSent:       newCounterVec("mail_sent_total", "Mail send attempts from the outbox, by result: sent, retried (failed, tried again later), failed (given up).", "result"),
		mfaChallenges:   newCounterVec("mfa_challenges_total", "Second steps of a login, by result: passed, failed (a wrong code), expired (an unknown, spent, expired or foreign mfa_token).", "result"),
	}
	m.gauges = append(m.gauges,
		gauge{name: "http_requests_in_flight", help: "HTTP requests being served.", kind: "gauge", read: func() []gaugeValue { return one(float64(m.inFlight.Load())) }},
		gauge{name: "build_info", help: "The running build; always 1.", kind: "gauge", labels: []string{"version", "commit", "goversion"},
			read: func() []gaugeValue {
				return []gaugeValue{{labels: []string{version, commit, runtime.Version()}, value: 1}}
			}},
		gauge{name: "go_goroutines", help: "Goroutines that currently exist.", kind: "gauge", read: func() []gaugeValue { return one(float64(runtime.NumGoroutine())) }},
	)
	var ms runtime.MemStats
	var msMu sync.Mutex
	var msAt time.Time
	mem := func(f func(*runtime.MemStats) float64) func() []gaugeValue {
		return func() []gaugeValue {
			msMu.Lock()
			defer msMu.Unlock()
			if time.Since(msAt) > time.Second { // one stop-the-world read per scrape
				runtime.ReadMemStats(&ms)
				msAt = time.Now()
			}
			return one(f(&ms))
		}
	}
	m.gauges = append(m.gauges,
		gauge{name: "go_memstats_heap_alloc_bytes", help: "Bytes of allocated heap objects.", kind: "gauge", read: mem(func(s *runtime.MemStats) float64 { return float64(s.HeapAlloc) })},
		gauge{name: "go_memstats_heap_sys_bytes", help: "Bytes of heap memory obtained from the OS.", kind: "gauge", read: mem(func(s *runtime.MemStats) float64 { return float64(s.HeapSys) })},
		gauge{name: "go_gc_cycles_total", help: "Completed GC cycles.", kind: "counter", read: mem(func(s *runtime.MemStats) float64 { return float64(s.NumGC) })},
		gauge{name: "go_gc_pause_seconds_total", help: "Total time the GC stopped the world.", kind: "counter", read: mem(func(s *runtime.MemStats) float64 { return float64(s.PauseTotalNs) / 1e9 })},
	)
	return m
}

// addPool exports the database pool's counters.
func (m *metrics) addPool(db *sql.DB) {
	stat := func(f func(sql.DBStats) float64) func() []gaugeValue {
		return func() []gaugeValue { return one(f(db.Stats())) }
	}
	m.gauges = append(m.gauges,
		gauge{name: "db_pool_max_open_connections", help: "The pool's limit (DB_MAX_OPEN_CONNS).", kind: "gauge", read: stat(func(s sql.DBStats) float64 { return float64(s.MaxOpenConnections) })},
		gauge{name: "db_pool_open_connections", help: "Connections open, in use or idle.", kind: "gauge", read: stat(func(s sql.DBStats) float64 { return float64(s.OpenConnections) })},
		gauge{name: "db_pool_in_use_connections", help: "Connections in use.", kind: "gauge", read: stat(func(s sql.DBStats) float64 { return float64(s.InUse) })},
		gauge{name: "db_pool_idle_connections", help: "Idle connections.", kind: "gauge", read: stat(func(s sql.DBStats) float64 { return float64(s.Idle) })},
		gauge{name: "db_pool_waits_total", help: "Times a request waited for a connection.", kind: "counter", read: stat(func(s sql.DBStats) float64 { return float64(s.WaitCount) })},
		gauge{name: "db_pool_wait_seconds_total", help: "Time spent waiting for a connection.", kind: "counter", read: stat(func(s sql.DBStats) float64 { return s.WaitDuration.Seconds() })},
		gauge{name: "db_pool_closed_total", help: "Connections closed, by reason.", kind: "counter", labels: []string{"reason"}, read: func() []gaugeValue {
			s := db.Stats()
			return []gaugeValue{{[]string{"max_idle"}, float64(s.MaxIdleClosed)}, {[]string{"idle_time"}, float64(s.MaxIdleTimeClosed)}, {[]string{"lifetime"}, float64(s.MaxLifetimeClosed)}}
		}},
	)
}

func (m *metrics) mailSent(result string) { m.mailsSent.add(1, result) }

func (m *metrics) mfaChallenge(result string) { m.mfaChallenges.add(1, result) }

// addOutbox exports the mail outbox's backlog.
func (m *metrics) addOutbox(s *store) {
	m.gauges = append(m.gauges, gauge{name: "mail_outbox_pending", help: "Mails (and mail requests) in the outbox still to be sent; mails given up are not pending.", kind: "gauge",
		read: func() []gaugeValue {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := s.outboxPending(ctx)
			if err != nil {
				return nil // the database is away: no sample rather than a false zero
			}
			return one(float64(n))
		}})
}

// addHasher exports the password hasher's concurrency.
func (m *metrics) addHasher(pw *passwordHasher) {
	pw.observe = func(d time.Duration) { m.hashDuration.observe(d) }
	m.gauges = append(m.gauges,
		gauge{name: "password_hashes_running", help: "Password hashes being computed.", kind: "gauge", read: func() []gaugeValue { return one(float64(pw.busy())) }},
		gauge{name: "password_hashes_waiting", help: "Password hashes waiting for a slot.", kind: "gauge", read: func() []gaugeValue { return one(float64(pw.waiting.Load())) }},
	)
}

// addLimiter exports the rate limiter's decisions and tracked keys.
func (m *metrics) addLimiter(l *rateLimits) {
	l.decided = func(p *policy, allowed bool) {
		result := "refused"
		if allowed {
			result = "allowed"
		}
		m.limitDecisions.add(1, p.name, result)
	}
	if ms, ok := l.store.(*memoryStore); ok {
		m.gauges = append(m.gauges, gauge{name: "ratelimit_tracked_keys", help: "Keys tracked by the memory limiter, by policy.", kind: "gauge", labels: []string{"policy"},
			read: func() []gaugeValue {
				var out []gaugeValue
				for _, p := range []*policy{l.auth, l.login, l.account, l.api} {
					out = append(out, gaugeValue{labels: []string{p.name}, value: float64(ms.len(p))})
				}
				return out
			}})
	}
}

// observe records one answered request; route is the ServeMux pattern.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
	if !knownMethod(method) {
		method = "other"
	}
	m.requests.add(1, route, method, statusText(status))
	m.duration.observe(d, route)
}

// statusTexts spares an allocation per request for the status label.
var statusTexts = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string {
	if code >= 0 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// write renders every series in the text exposition format.
func (m *metrics) write(w io.Writer) error {
	b := bufio.NewWriter(w)
	writeCounters(b, m.requests)
	writeCounters(b, m.limitDecisions)
	writeCounters(b, m.sessionsRevoked)
	writeCounters(b, m.mailsSent)
	writeCounters(b, m.mfaChallenges)
	writeHistograms(b, m.duration)
	writeHistograms(b, m.hashDuration)
	for _, g := range m.gauges {
		writeHeader(b, g.name, g.help, g.kind)
		for _, v := range g.read() {
			sample(b, g.name, g.labels, v.labels, v.value)
		}
	}
	return b.Flush()
}

func writeHeader(b *bufio.Writer, name, help, kind string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, kind)
}

func writeCounters(b *bufio.Writer, c *counterVec) {
	writeHeader(b, c.name, c.help, "counter")
	all := c.series.snapshot()
	for _, k := range sortedKeys(all) {
		sample(b, c.name, c.labels, k[:len(c.labels)], float64(all[k].Load()))
	}
}

func writeHistograms(b *bufio.Writer, h *histogramVec) {
	writeHeader(b, h.name, h.help, "histogram")
	withLE := slices.Concat(h.labels, []string{"le"}) // a bucket's upper bound is a label of its own
	all := h.series.snapshot()
	for _, k := range sortedKeys(all) {
		hist, values := all[k], k[:len(h.labels)]
		var cum uint64
		for i, upper := range h.buckets {
			cum += hist.counts[i].Load()
			sample(b, h.name+"_bucket", withLE, slices.Concat(values, []string{formatFloat(upper)}), float64(cum))
		}
		cum += hist.counts[len(h.buckets)].Load()
		sample(b, h.name+"_bucket", withLE, slices.Concat(values, []string{"+Inf"}), float64(cum))
		sample(b, h.name+"_sum", h.labels, values, time.Duration(hist.sumNs.Load()).Seconds())
		sample(b, h.name+"_count", h.labels, values, float64(cum))
	}
}

func sortedKeys[V any](m map[labelValues]V) []labelValues {
	keys := make([]labelValues, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b labelValues) int { return slices.Compare(a[:], b[:]) })
	return keys
}

// sample writes one line: name{label="value",...} value.
func sample(b *bufio.Writer, name string, labels, values []string, v float64) {
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l)
			b.WriteString(`="`)
			b.WriteString(escapeLabel(values[i]))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

// escapeLabel escapes a label value as the format asks: backslash, double
// quote and line feed.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// metricsHandler is the second listener's mux: /metrics. It is never
// routed through nginx.
func metricsHandler(m *metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.write(w)
	})
	return mux
}

// pprofHandler is /debug/pprof/, served only on PPROF_ADDR, a loopback
// address: a profile shows memory and can stall the process.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveMetrics serves a listener of the operators' (metrics, pprof) until
// ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 60 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
