package main

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

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
