package main

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"time"
)

// newServer builds the whole HTTP surface: the route table inside the
// middleware chain.
func newServer(logger *slog.Logger, cfg config, deps serverDeps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, logger, cfg, deps)
	return withMiddleware(logger, cfg, deps.metrics, deps.health, routeRecorder(mux))
}

// withMiddleware wraps h in the chain every request passes through, listed
// outermost first.
func withMiddleware(logger *slog.Logger, cfg config, m *metrics, life *healthState, h http.Handler) http.Handler {
	chain := []func(http.Handler) http.Handler{
		requestID(cfg.TrustedProxy), // the id and state exist before anything can log or fail
		accessLog(logger, m, life),  // wraps recover, so it reports the 500 and the stack once; adds Connection: close while draining
		recoverPanics,               // a panic becomes a 500 problem
		securityHeaders,             // set before any handler (or panic) writes
		cors(cfg.CORSOrigins),       // preflights answered before rate limits and routes see them
		csrf(cfg.FrontendURL),       // a cross-site change on the session cookie, refused before anything is read
		limitBody(cfg.MaxBodyBytes), // the cap is in place before any handler reads
	}
	for i := len(chain) - 1; i >= 0; i-- {
		h = chain[i](h)
	}
	return h
}

// serverDeps are the shared pieces the handler makers draw on.
type serverDeps struct {
	health  *healthState
	store   *store
	hasher  *passwordHasher
	limits  *rateLimits
	metrics *metrics
	audit   *auditor
	mailer  *mailer
	cursors *cursors
	mfa     *authenticator
}

func newServerDeps(logger *slog.Logger, cfg config, db *sql.DB, health *healthState, now func() time.Time) serverDeps {
	d := serverDeps{
		health:  health,
		store:   &store{db: db, now: now},
		limits:  newRateLimits(cfg.RateLimit, db, now, logger),
		metrics: newMetrics(health.version, health.commit),
		audit:   newAuditor(logger, now),
	}
	d.mailer = newMailer(d.store, cfg, now, logger)
	d.cursors = newCursors(cfg.SecretKey)
	d.mfa = newAuthenticator(cfg.SecretKey, cfg.FrontendURL, now)
	d.audit.revoked = func(reason string, n int64) { d.metrics.sessionsRevoked.add(uint64(n), reason) }
	d.setHasher(newPasswordHasher(passwordIterations, runtime.GOMAXPROCS(0)))
	d.metrics.addPool(db)
	d.metrics.addLimiter(d.limits)
	d.metrics.addOutbox(d.store)
	return d
}

// setHasher installs pw (tests install a cheap one) with its metrics.
func (d *serverDeps) setHasher(pw *passwordHasher) {
	d.hasher = pw
	d.metrics.addHasher(pw)
}

// addRoutes is the whole API surface. Each route names its guards, outer
// first, in the contract's order: rate limit, then authentication and
// permission. It returns the patterns, which the spec parity test reads.
func addRoutes(mux *http.ServeMux, logger *slog.Logger, cfg config, d serverDeps) []string {
	var patterns []string
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		patterns = append(patterns, pattern)
	}
	s, pw, rl, au, ml, pages, mfa := d.store, d.hasher, d.limits, d.audit, d.mailer, d.cursors, d.mfa
	sessions := cfg.sessions()
	creds := credentials{store: s, hasher: pw, limits: rl, mfa: mfa, audit: au, mailer: ml, sessions: sessions, logger: logger, rp: relyingParty(cfg)}
	authLimit := rl.limit(rl.auth, failClosed)
	apiLimit := rl.limit(rl.api, failOpen)
	user, superuser := requireUser(s, sessions), requireSuperuser(s, sessions)
	enrolling := requireUser(s, sessions.whileEnrolling()) // the routes an account that must enrol a second factor may still use
	// Idempotency-Key, on every POST that creates or sends something;
	// once, where the answer holds a secret that is never kept.
	keyed, keyedOnce := idempotent(s, false), idempotent(s, true)

	handle("GET /api/v1/health", handleHealth(d.health, s))
	handle("GET /api/v1/health/live", handleLive())

	handle("POST /api/v1/auth/register", authLimit(keyed(handleRegister(s, pw, au, ml))))
	handle("POST /api/v1/auth/login", authLimit(handleLogin(creds, cfg.EmailVerification == "required")))
	handle("POST /api/v1/auth/login/mfa", authLimit(handleLoginMFA(creds, d.metrics.mfaChallenge)))
	// A challenge checks nothing and is bounded per network (maxLiveChallenges):
	// the sign-in page asks for one on every visit, for the email field's
	// autofill, which must not spend the sign-in budget.
	handle("POST /api/v1/auth/passkey/options", apiLimit(handlePasskeySignInOptions(creds)))
	handle("POST /api/v1/auth/passkey", authLimit(handlePasskeySignIn(creds, cfg.EmailVerification == "required")))
	handle("POST /api/v1/auth/logout", apiLimit(enrolling(handleLogout(s, au))))
	handle("POST /api/v1/auth/password-recovery", authLimit(keyed(handlePasswordRecovery(s, au))))
	handle("POST /api/v1/auth/password-reset", authLimit(handlePasswordReset(s, pw, ml, au)))
	handle("POST /api/v1/auth/verify-email", authLimit(handleVerifyEmail(s, au, ml)))
	handle("POST /api/v1/auth/verify-email/resend", authLimit(keyed(handleVerifyEmailResend(s, au))))

	handle("GET /api/v1/users/me", apiLimit(enrolling(handleMeGet())))
	handle("PATCH /api/v1/users/me", apiLimit(user(handleMePatch(creds, cfg.IfMatchRequired)))) // an email change also spends the auth budget
	handle("POST /api/v1/users/me/password", authLimit(user(handleMePassword(creds))))
	handle("DELETE /api/v1/users/me", authLimit(user(handleMeDelete(creds, cfg.IfMatchRequired))))
	handle("POST /api/v1/users/me/verify-email", authLimit(user(keyed(handleMeVerifyEmail(s, ml)))))
	handle("POST /api/v1/users/me/mfa/totp", authLimit(enrolling(keyedOnce(handleTOTPStart(creds)))))
	handle("POST /api/v1/users/me/mfa/totp/confirm", authLimit(enrolling(handleTOTPConfirm(s, mfa, au, ml))))
	handle("GET /api/v1/users/me/mfa", apiLimit(enrolling(handleMFAStatus(s))))
	handle("DELETE /api/v1/users/me/mfa", authLimit(user(handleMFADisable(creds))))
	handle("POST /api/v1/users/me/mfa/recovery-codes", authLimit(user(handleRecoveryCodes(creds))))
	handle("POST /api/v1/users/me/passkeys/options", authLimit(enrolling(keyedOnce(handlePasskeyOptions(creds)))))
	handle("POST /api/v1/users/me/passkeys", authLimit(enrolling(handlePasskeyCreate(creds))))
	handle("GET /api/v1/users/me/passkeys", apiLimit(enrolling(handlePasskeyList(s, pages))))
	handle("PATCH /api/v1/users/me/passkeys/{id}", apiLimit(user(handlePasskeyRename(s))))
	handle("DELETE /api/v1/users/me/passkeys/{id}", authLimit(user(handlePasskeyDelete(creds))))
	handle("GET /api/v1/users/me/sessions", apiLimit(handleSessionList(s, sessions, pages))) // authenticates as user does, in its own statement
	handle("DELETE /api/v1/users/me/sessions/{id}", apiLimit(user(handleSessionDelete(s, au))))
	handle("DELETE /api/v1/users/me/sessions", apiLimit(user(handleSessionDeleteOthers(s, au))))

	handle("GET /api/v1/users", apiLimit(superuser(handleUserList(s, pages))))
	handle("POST /api/v1/users", apiLimit(superuser(keyed(handleUserCreate(s, pw, au)))))
	handle("GET /api/v1/users/{id}", apiLimit(user(handleUserGet(s))))
	handle("PATCH /api/v1/users/{id}", apiLimit(superuser(handleUserPatch(s, pw, au, ml, cfg.IfMatchRequired))))
	handle("DELETE /api/v1/users/{id}", apiLimit(superuser(handleUserDelete(s, au, cfg.IfMatchRequired))))
	handle("DELETE /api/v1/users/{id}/sessions", apiLimit(superuser(handleUserSessionsDelete(s, au))))

	handle("GET /api/v1/items", apiLimit(handleItemList(s, sessions, pages))) // authenticates as user does, in its own statement
	handle("POST /api/v1/items", apiLimit(user(keyed(handleItemCreate(s)))))
	handle("GET /api/v1/items/{id}", apiLimit(handleItemGet(s, sessions))) // likewise
	handle("PATCH /api/v1/items/{id}", apiLimit(user(handleItemPatch(s, cfg.IfMatchRequired))))
	handle("DELETE /api/v1/items/{id}", apiLimit(user(handleItemDelete(s, cfg.IfMatchRequired))))

	if cfg.DocsEnabled {
		handle("GET /api/v1/openapi.json", handleOpenAPI(d.health.version))
		handle("GET /docs", handleDocs())
	}
	// Everything else: in development a page of the frontend; else a 404
	// or 405 problem (see handleNoRoute).
	var frontend http.Handler
	if cfg.ServeFrontend {
		frontend = handleFrontend()
	}
	mux.Handle("/", handleNoRoute(mux, frontend))
	return patterns
}

// routeRecorder keeps the matched pattern for the access log and the
// metrics: ServeMux sets r.Pattern on the request it receives, which outer
// layers do not hold. The catch-all names its answers itself.
func routeRecorder(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if st := stateFrom(r.Context()); st.route == "" {
				st.route = r.Pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// handleNoRoute answers every request no pattern matched: a page read
// outside the service's own paths (/api/, /docs: a 404 problem when docs are
// off) goes to frontend when it is served (development); else a catch-all
// route hides ServeMux's own 405, so the allowed methods are found by asking
// the mux about the same path with each method.
func handleNoRoute(mux *http.ServeMux, frontend http.Handler) http.Handler {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		page := !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/docs"
		st := stateFrom(r.Context())
		if frontend != nil && page && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			st.route = routeFrontend
			frontend.ServeHTTP(w, r)
			return nil
		}
		st.route = routeUnmatched
		var allow []string
		for _, m := range methods {
			probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return newError(codeMethodNotAllowed, fmt.Sprintf("Method %s is not allowed here; use %s.", r.Method, strings.Join(allow, ", ")))
		}
		return newError(codeNotFound, "No such route.")
	})
}
