package main

import (
	"context"
	"database/sql"
	"errors"
	"hash/maphash"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The limiter is a weighted two-window counter: each key keeps the count of
// the current fixed window and of the one before, and the estimate is
// prev × (share of the previous window still inside the sliding window) +
// curr. It needs two integers per key whatever the limit (a timestamp log
// needs one entry per request), it slides smoothly instead of letting a
// burst through at each window edge, and its error is bounded: it assumes
// the previous window's requests were spread evenly.

// policy is one budget: limit requests per window per key.
type policy struct {
	name   string
	limit  int
	window time.Duration
	// overflowPasses: when the memory table is full, an untracked key
	// passes uncounted instead of sharing the overflow budget. For the
	// per-account login policy, a shared budget would let failed logins for
	// made-up emails lock every other account out; the per-IP auth policy
	// still limits those requests.
	overflowPasses bool
}

// windowCount is one key's state.
type windowCount struct {
	index int64 // the fixed window curr counts, as now / window
	curr  int32
	prev  int32
}

// at returns the counts as seen from fixed window idx.
func (c windowCount) at(idx int64) windowCount {
	switch c.index {
	case idx:
		return c
	case idx - 1:
		return windowCount{index: idx, prev: c.curr}
	default:
		return windowCount{index: idx}
	}
}

func (p policy) windowIndex(now time.Time) (idx int64, elapsed time.Duration) {
	n := now.UnixNano()
	w := int64(p.window)
	return n / w, time.Duration(n % w)
}

// limitDecision is the answer for one request and the headers' content.
type limitDecision struct {
	policy     policy
	allowed    bool
	remaining  int
	reset      time.Duration // when the client may send again (denied) or the window rolls (allowed)
	retryAfter time.Duration
}

// decide judges one more request against c, already moved to the current
// window, elapsed into it.
func (p policy) decide(c windowCount, elapsed time.Duration) limitDecision {
	w := float64(p.window)
	limit := float64(p.limit)
	weight := (w - float64(elapsed)) / w
	estimate := float64(c.prev)*weight + float64(c.curr)
	d := limitDecision{policy: p, allowed: estimate+1 <= limit, reset: p.window - elapsed}
	if d.allowed {
		d.remaining = max(0, int(math.Floor(limit-estimate-1)))
		return d
	}
	d.retryAfter = p.wait(c, elapsed)
	d.reset = d.retryAfter
	return d
}

// wait is how long until one more request fits. Within the current window
// the previous window's weight decays linearly; if that is not enough, the
// window rolls and the current count starts to decay in turn. So a wait can
// exceed one window, never two.
func (p policy) wait(c windowCount, elapsed time.Duration) time.Duration {
	w := float64(p.window)
	limit := float64(p.limit)
	left := w - float64(elapsed)
	if c.prev > 0 && float64(c.curr)+1 <= limit {
		t := left - w*(limit-1-float64(c.curr))/float64(c.prev)
		return time.Duration(math.Ceil(max(t, 1)))
	}
	after := 0.0
	if float64(c.curr) > limit-1 {
		after = w * (1 - (limit-1)/float64(c.curr))
	}
	return time.Duration(math.Ceil(left + after))
}

// limitStore keeps the counts. take judges one request for key under p and,
// when consume is set and it is allowed, counts it; a refused request is
// never counted.
type limitStore interface {
	take(ctx context.Context, p policy, key string, now time.Time, consume bool) (limitDecision, error)
	sweep(ctx context.Context, now time.Time) error
}

// memoryStore is the single-replica store: a table per policy.
type memoryStore struct {
	tables map[string]*memoryTable // fixed at construction; read without a lock
}

// memoryTable caps its keys. When it is full, a key it does not track
// shares the overflow count with every other such key: a flood of fresh
// addresses is limited as one client and cannot push out (and so reset) a
// key already tracked. The price is fairness while full: newcomers share one
// budget until the janitor frees room, which it does one window after their
// last request.
//
// The keys are spread over shards, each under its own mutex, so parallel
// checks on different keys rarely wait for each other; size, shared by the
// shards, keeps the cap exact.
type memoryTable struct {
	policy     policy
	maxKeys    int64
	size       atomic.Int64
	seed       maphash.Seed
	shards     [memoryShards]memoryShard
	overflowMu sync.Mutex
	overflow   windowCount
}

const memoryShards = 32

type memoryShard struct {
	mu     sync.Mutex
	counts map[string]windowCount
	_      [40]byte // keeps neighbouring shards' mutexes off one cache line
}

func newMemoryStore(maxKeys int, policies ...policy) *memoryStore {
	s := &memoryStore{tables: make(map[string]*memoryTable, len(policies))}
	for _, p := range policies {
		t := &memoryTable{policy: p, maxKeys: int64(maxKeys), seed: maphash.MakeSeed()}
		for i := range t.shards {
			t.shards[i].counts = make(map[string]windowCount)
		}
		s.tables[p.name] = t
	}
	return s
}

func (s *memoryStore) take(_ context.Context, p policy, key string, now time.Time, consume bool) (limitDecision, error) {
	t := s.tables[p.name]
	idx, elapsed := p.windowIndex(now)
	sh := &t.shards[maphash.String(t.seed, key)%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c, tracked := sh.counts[key]
	if !tracked && !t.reserve(consume) {
		return t.takeOverflow(p, idx, elapsed, consume), nil
	}
	c = c.at(idx)
	d := p.decide(c, elapsed)
	if consume && d.allowed {
		c.curr++
		sh.counts[key] = c
	} else if !tracked && consume {
		t.size.Add(-1) // reserved, but refused: nothing stored
	}
	return d, nil
}

// reserve claims room for a new key when the request may be stored (a peek
// only asks whether there is room).
func (t *memoryTable) reserve(consume bool) bool {
	for {
		n := t.size.Load()
		if n >= t.maxKeys {
			return false
		}
		if !consume || t.size.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// takeOverflow judges a key the full table does not track.
func (t *memoryTable) takeOverflow(p policy, idx int64, elapsed time.Duration, consume bool) limitDecision {
	if p.overflowPasses {
		return limitDecision{policy: p, allowed: true, remaining: p.limit - 1, reset: p.window - elapsed}
	}
	t.overflowMu.Lock()
	defer t.overflowMu.Unlock()
	c := t.overflow.at(idx)
	d := p.decide(c, elapsed)
	if consume && d.allowed {
		c.curr++
		t.overflow = c
	}
	return d
}

// sweep drops keys whose windows have both passed: they weigh nothing.
func (s *memoryStore) sweep(_ context.Context, now time.Time) error {
	for _, t := range s.tables {
		idx, _ := t.policy.windowIndex(now)
		for i := range t.shards {
			sh := &t.shards[i]
			sh.mu.Lock()
			for key, c := range sh.counts {
				if c.index < idx-1 {
					delete(sh.counts, key)
					t.size.Add(-1)
				}
			}
			sh.mu.Unlock()
		}
	}
	return nil
}

func (s *memoryStore) len(name string) int {
	return int(s.tables[name].size.Load())
}

// postgresStore shares the counts between replicas. One statement per
// check, under the row lock of INSERT ... ON CONFLICT, so concurrent checks
// from any replica never let more than the limit through.
type postgresStore struct {
	db       *sql.DB
	policies []policy
}

// takeSQL moves the row to window $3, adds one when the request fits
// ($4 is the previous window's weight, $5 the limit, $6 whether to count)
// and says whether it counted. The CASEs are the window roll of
// windowCount.at; SET sees the row as it was.
const takeSQL = `
INSERT INTO rate_limits AS r (policy, key, win, curr, prev, counted)
VALUES ($1, $2, $3, CASE WHEN $6 AND 1 <= $5 THEN 1 ELSE 0 END, 0, $6 AND 1 <= $5)
ON CONFLICT (policy, key) DO UPDATE SET
	win     = $3,
	prev    = CASE WHEN r.win = $3 THEN r.prev WHEN r.win = $3 - 1 THEN r.curr ELSE 0 END,
	curr    = CASE WHEN r.win = $3 THEN r.curr ELSE 0 END
	        + CASE WHEN $6 AND (CASE WHEN r.win = $3 THEN r.prev WHEN r.win = $3 - 1 THEN r.curr ELSE 0 END) * $4::float8
	                         + (CASE WHEN r.win = $3 THEN r.curr ELSE 0 END) + 1 <= $5 THEN 1 ELSE 0 END,
	counted = $6 AND (CASE WHEN r.win = $3 THEN r.prev WHEN r.win = $3 - 1 THEN r.curr ELSE 0 END) * $4::float8
	                 + (CASE WHEN r.win = $3 THEN r.curr ELSE 0 END) + 1 <= $5
RETURNING curr, prev, counted`

func (s *postgresStore) take(ctx context.Context, p policy, key string, now time.Time, consume bool) (limitDecision, error) {
	idx, elapsed := p.windowIndex(now)
	if !consume {
		var c windowCount
		err := s.db.QueryRowContext(ctx, `SELECT win, curr, prev FROM rate_limits WHERE policy = $1 AND key = $2`, p.name, key).
			Scan(&c.index, &c.curr, &c.prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return limitDecision{}, err
		}
		return p.decide(c.at(idx), elapsed), nil
	}
	weight := float64(p.window-elapsed) / float64(p.window)
	c := windowCount{index: idx}
	var counted bool
	err := s.db.QueryRowContext(ctx, takeSQL, p.name, key, idx, weight, p.limit, consume).Scan(&c.curr, &c.prev, &counted)
	if err != nil {
		return limitDecision{}, err
	}
	if counted {
		c.curr-- // judge the state this request found
	}
	d := p.decide(c, elapsed)
	d.allowed = counted // the database's word, made under its row lock
	return d, nil
}

func (s *postgresStore) sweep(ctx context.Context, now time.Time) error {
	for _, p := range s.policies {
		idx, _ := p.windowIndex(now)
		if _, err := s.db.ExecContext(ctx, `DELETE FROM rate_limits WHERE policy = $1 AND win < $2`, p.name, idx-1); err != nil {
			return err
		}
	}
	return nil
}

// rateLimits applies the three policies of the contract.
type rateLimits struct {
	enabled bool
	store   limitStore
	auth    policy // register, login, password change: per client IP
	login   policy // failed logins: per account, from any address
	api     policy // every other API route: per client IP
	now     func() time.Time
	logger  *slog.Logger
}

func newRateLimits(cfg rateLimitConfig, db *sql.DB, now func() time.Time, logger *slog.Logger) *rateLimits {
	l := &rateLimits{
		enabled: cfg.Enabled,
		auth:    policy{name: "auth", limit: cfg.AuthRequests, window: cfg.AuthWindow},
		login:   policy{name: "login", limit: cfg.LoginFailures, window: cfg.LoginWindow, overflowPasses: true},
		api:     policy{name: "api", limit: cfg.APIRequests, window: cfg.APIWindow},
		now:     now,
		logger:  logger,
	}
	if cfg.Store == "postgres" {
		l.store = &postgresStore{db: db, policies: []policy{l.auth, l.login, l.api}}
	} else {
		l.store = newMemoryStore(cfg.MaxKeys, l.auth, l.login, l.api)
	}
	return l
}

// sweep drops expired counts; main runs it every minute.
func (l *rateLimits) sweep(ctx context.Context) {
	if err := l.store.sweep(ctx, l.now()); err != nil && ctx.Err() == nil {
		l.logger.Error("rate-limit sweep failed", "error", err.Error())
	}
}

// onStoreFailure is what a guarded route does when the limiter's store
// cannot answer.
type onStoreFailure int

const (
	failClosed onStoreFailure = iota // answer 503: the route guards passwords
	failOpen                         // let the request through: an outage must not stop the API
)

// limit guards a route with p, keyed by client IP. When the store cannot
// answer, the route fails as onFailure says; either way the error is logged.
func (l *rateLimits) limit(p policy, onFailure onStoreFailure) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !l.enabled {
			return next
		}
		return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
			st := stateFrom(r.Context())
			d, err := l.store.take(r.Context(), p, limitKey(st.clientIP), l.now(), true)
			if err != nil {
				l.logger.ErrorContext(r.Context(), "rate-limit store failed", "policy", p.name, "fail_closed", onFailure == failClosed, "error", err.Error())
				if onFailure == failClosed {
					return unavailable(err)
				}
				next.ServeHTTP(w, r)
				return nil
			}
			if err := l.apply(w, st, d); err != nil {
				return err
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// apply puts the headers of the policy closest to running out on the
// response and refuses the request when d does.
func (l *rateLimits) apply(w http.ResponseWriter, st *requestState, d limitDecision) error {
	if !st.limitShown || !d.allowed || d.remaining < st.limitRemaining {
		st.limitShown, st.limitRemaining = true, d.remaining
		setLimitHeaders(w.Header(), d)
	}
	if !d.allowed {
		return &apiError{Code: codeRateLimited, Detail: "Too many requests; retry after " + strconv.Itoa(ceilSeconds(d.retryAfter)) + " seconds.", RetryAfter: d.retryAfter}
	}
	return nil
}

func setLimitHeaders(h http.Header, d limitDecision) {
	name := strconv.Quote(d.policy.name)
	reset := strconv.Itoa(ceilSeconds(d.reset))
	limit := strconv.Itoa(d.policy.limit)
	remaining := strconv.Itoa(d.remaining)
	h.Set("RateLimit-Policy", name+";q="+limit+";w="+strconv.Itoa(ceilSeconds(d.policy.window)))
	h.Set("RateLimit", name+";r="+remaining+";t="+reset)
	h.Set("X-RateLimit-Limit", limit)
	h.Set("X-RateLimit-Remaining", remaining)
	h.Set("X-RateLimit-Reset", reset)
}

// checkLoginFailures refuses a login for an account that has used up its
// failures, before any hashing. Only failures count, so the owner, once
// right, is never locked out by their own successes.
func (l *rateLimits) checkLoginFailures(w http.ResponseWriter, r *http.Request, email string) error {
	if !l.enabled {
		return nil
	}
	d, err := l.store.take(r.Context(), l.login, email, l.now(), false)
	if err != nil {
		l.logger.ErrorContext(r.Context(), "rate-limit store failed", "policy", l.login.name, "fail_closed", true, "error", err.Error())
		return unavailable(err)
	}
	return l.apply(w, stateFrom(r.Context()), d)
}

func (l *rateLimits) recordLoginFailure(r *http.Request, email string) {
	if !l.enabled {
		return
	}
	if _, err := l.store.take(r.Context(), l.login, email, l.now(), true); err != nil {
		l.logger.ErrorContext(r.Context(), "rate-limit store failed", "policy", l.login.name, "error", err.Error())
	}
}

// limitKey is the bucket of a client address: IPv4 as it is, IPv6 by its
// /64, since one host is usually handed a whole /64.
func limitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
