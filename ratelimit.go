package main

import (
	"context"
	"database/sql"
	"log/slog"
	"math"
	"net/http"
	"strconv"
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
	// overflowPasses: the policy is keyed by account, so when the memory
	// table is full an untracked key passes uncounted instead of sharing a
	// count (see memoryTable); the per-IP auth policy still limits it.
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

func (p *policy) windowIndex(now time.Time) (idx int64, elapsed time.Duration) {
	n := now.UnixNano()
	w := int64(p.window)
	idx = n / w
	return idx, time.Duration(n - idx*w) // one division, not two
}

// limitDecision is the answer for one request and the headers' content.
type limitDecision struct {
	policy     *policy
	allowed    bool
	remaining  int
	reset      time.Duration // when the client may send again (denied) or the window rolls (allowed)
	retryAfter time.Duration
}

// decide judges one more request against c, already moved to the current
// window, elapsed into it. It runs on every check, so the allowed path is a
// few float operations and nothing else.
func (p *policy) decide(c windowCount, elapsed time.Duration) limitDecision {
	left := float64(p.limit) - p.estimate(c, elapsed) - 1
	if left >= 0 {
		return limitDecision{policy: p, allowed: true, remaining: int(left), reset: p.window - elapsed}
	}
	wait := p.wait(c, elapsed)
	return limitDecision{policy: p, reset: wait, retryAfter: wait}
}

// estimate is the sliding window's count: the previous window weighted by
// the share of it still inside the window, plus the current one.
func (p *policy) estimate(c windowCount, elapsed time.Duration) float64 {
	w := float64(p.window)
	return float64(c.prev)*(w-float64(elapsed))/w + float64(c.curr)
}

// wait is how long until one more request fits. Within the current window
// the previous window's weight decays linearly; if that is not enough, the
// window rolls and the current count starts to decay in turn. So a wait can
// exceed one window, never two.
func (p *policy) wait(c windowCount, elapsed time.Duration) time.Duration {
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

// rateLimits applies the four policies of the contract.
type rateLimits struct {
	enabled bool
	store   limitStore
	auth    *policy // register, login, password and email change: per client IP
	login   *policy // password failures: per account and client network
	account *policy // password failures: per account, all networks together
	api     *policy // every other API route: per client IP
	now     func() time.Time
	logger  *slog.Logger
	decided func(p *policy, allowed bool) // each decision, for metrics
}

func newRateLimits(cfg rateLimitConfig, db *sql.DB, now func() time.Time, logger *slog.Logger) *rateLimits {
	l := &rateLimits{
		enabled: cfg.Enabled,
		auth:    &policy{name: "auth", limit: cfg.AuthRequests, window: cfg.AuthWindow},
		login:   &policy{name: "login", limit: cfg.LoginFailures, window: cfg.LoginWindow, overflowPasses: true},
		account: &policy{name: "account", limit: cfg.AccountFailures, window: cfg.AccountWindow, overflowPasses: true},
		api:     &policy{name: "api", limit: cfg.APIRequests, window: cfg.APIWindow},
		now:     now,
		logger:  logger,
	}
	if cfg.Store == "postgres" {
		l.store = &postgresStore{db: db, policies: []*policy{l.auth, l.login, l.account, l.api}}
	} else {
		l.store = newMemoryStore(cfg.MaxKeys, l.auth, l.login, l.account, l.api)
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
func (l *rateLimits) limit(p *policy, onFailure onStoreFailure) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !l.enabled {
			return next
		}
		return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
			if err := l.check(w, r, p, onFailure); err != nil {
				return err
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// check judges one request under p, keyed by client IP, and counts it when
// allowed. A store failure is logged and, failing open, lets it through.
func (l *rateLimits) check(w http.ResponseWriter, r *http.Request, p *policy, onFailure onStoreFailure) error {
	if !l.enabled {
		return nil
	}
	st := stateFrom(r.Context())
	d, err := l.store.take(r.Context(), p, clientNetwork(st.clientIP), l.now(), true)
	if err != nil {
		l.logger.ErrorContext(r.Context(), "rate-limit store failed", "policy", p.name, "fail_closed", onFailure == failClosed, "error", err.Error())
		if onFailure == failClosed {
			return unavailable(err)
		}
		return nil
	}
	return l.apply(w, st, d)
}

// apply records d, puts the headers of the policy closest to running out
// on the response, and refuses the request when d does.
func (l *rateLimits) apply(w http.ResponseWriter, st *requestState, d limitDecision) error {
	if l.decided != nil {
		l.decided(d.policy, d.allowed)
	}
	st.limits = append(st.limits, d)
	showLimits(w, st)
	if !d.allowed {
		return &apiError{Code: codeRateLimited, Detail: "Too many requests; retry after " + strconv.Itoa(ceilSeconds(d.retryAfter)) + " seconds.", RetryAfter: d.retryAfter}
	}
	return nil
}

// showLimits sets the headers of the request's decision closest to
// running out: one that refused, else the one with the fewest requests
// left.
func showLimits(w http.ResponseWriter, st *requestState) {
	shown := -1
	for i, d := range st.limits {
		if shown < 0 || !d.allowed || (st.limits[shown].allowed && d.remaining < st.limits[shown].remaining) {
			shown = i
		}
	}
	if shown >= 0 {
		setLimitHeaders(w.Header(), st.limits[shown])
	}
}

// refund gives one request back to p's decision in st and restates the
// headers: a password failure reserved and then not made counts for
// nothing, and the headers say so.
func refund(w http.ResponseWriter, st *requestState, p *policy) {
	for i := range st.limits {
		if st.limits[i].policy == p && st.limits[i].allowed {
			st.limits[i].remaining++
		}
	}
	showLimits(w, st)
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
