package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
)

// bearerToken is the token of "Authorization: Bearer <token>", or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	token = strings.TrimSpace(token)
	if len(token) != 43 { // 32 bytes in unpadded base64url
		return ""
	}
	return token
}

var errUnauthenticated = newError(codeUnauthorized, "Sign in: the bearer token is missing, invalid or expired.")

// requireUser lets a request through only with a live session of an active
// user, whom it records in the request state.
func requireUser(s *store, p sessionPolicy) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
			token := bearerToken(r)
			if token == "" {
				return errUnauthenticated
			}
			hash := hashToken(token)
			u, sessionID, err := s.userBySession(r.Context(), hash, p)
			if err := admit(r, hash, u, sessionID, err); err != nil {
				return err
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// readAs runs a read that finds the session in its own statement (a store
// method named ...As: one round trip instead of two) and answers as
// requireUser would: 401 without a live session, before anything else;
// then bad, the request's own error, if it has one (the session alone is
// looked up then); else read, which returns the session's user and id
// (errMissing when no session is live). GET /items, GET /items/{id} and GET
// /users/me/sessions are read this way.
func readAs(r *http.Request, s *store, p sessionPolicy, bad error, read func(tokenHash []byte) (user, string, error)) error {
	token := bearerToken(r)
	if token == "" {
		return errUnauthenticated
	}
	hash := hashToken(token)
	if bad != nil {
		read = func(hash []byte) (user, string, error) { return s.userBySession(r.Context(), hash, p) }
	}
	u, sessionID, err := read(hash)
	if err := admit(r, hash, u, sessionID, err); err != nil {
		return err
	}
	return bad
}

// admit judges a session lookup for the token hash: a live session of an
// active user is recorded in the request state; anything else is 401, or
// the lookup's own error.
func admit(r *http.Request, hash []byte, u user, sessionID string, err error) error {
	switch {
	case errors.Is(err, errMissing) || (err == nil && !u.IsActive):
		return errUnauthenticated
	case err != nil:
		return err
	}
	st := stateFrom(r.Context())
	st.user, st.userID, st.sessionHash, st.sessionID = &u, u.ID, hash, sessionID
	return nil
}

// requireSuperuser answers 403 to anyone else, before any lookup.
func requireSuperuser(s *store, p sessionPolicy) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return requireUser(s, p)(apiFunc(func(w http.ResponseWriter, r *http.Request) error {
			if !currentUser(r).IsSuperuser {
				return newError(codeForbidden, "Only a superuser may do this.")
			}
			next.ServeHTTP(w, r)
			return nil
		}))
	}
}

// registerRequest is POST /auth/register.
type registerRequest struct {
	Email    opt[string]  `json:"email"`
	Password opt[string]  `json:"password"`
	FullName opt[*string] `json:"full_name"`
}

func (q *registerRequest) normalize() { q.Email.V = normalizeEmail(q.Email.V) }

func (q registerRequest) valid() []fieldError {
	var p problems
	p.add("email", requiredEmail(q.Email))
	p.add("password", requiredPassword(q.Password))
	p.add("full_name", fullNameProblem(q.FullName))
	return p
}

func handleRegister(s *store, pw *passwordHasher, au *auditor, m *mailer) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[registerRequest](r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		hash, err := pw.hash(ctx, hashClaimOf(r, false), req.Password.V)
		if err != nil {
			return err
		}
		var u user
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if u, err = s.createUser(ctx, tx, user{Email: req.Email.V, FullName: req.FullName.V, passwordHash: hash, IsActive: true}); err != nil {
				return err
			}
			return m.mailToken(ctx, tx, u, purposeVerify)
		})
		if err != nil {
			return classify(err, "User")
		}
		au.record(r, "user.created", u.ID, u.ID)
		w.Header().Set("Location", "/api/v1/users/"+u.ID)
		writeJSON(w, http.StatusCreated, contentJSON, u)
		return nil
	})
}

// loginRequest is the JSON login body; the OAuth2 password form maps onto it.
type loginRequest struct {
	Email    opt[string] `json:"email"`
	Password opt[string] `json:"password"`
}

func (q *loginRequest) normalize() { q.Email.V = normalizeEmail(q.Email.V) }

func (q loginRequest) valid() []fieldError {
	var p problems
	p.add("email", requiredEmail(q.Email))
	p.add("password", requiredPassword(q.Password))
	return p
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

var errBadCredentials = newError(codeUnauthorized, "Incorrect email or password.")

// handleLogin checks the failure budgets before hashing, spends one hash
// whether or not the email exists, and gives both failures the same words.
func handleLogin(s *store, pw *passwordHasher, limits *rateLimits, au *auditor, sessions sessionPolicy, requireVerified bool, logger *slog.Logger) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decodeLogin(r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		var account *user
		u, err := s.userByEmail(ctx, req.Email.V)
		switch {
		case err == nil:
			account = &u
		case !errors.Is(err, errMissing):
			return err
		}
		failed := func(reason string) {
			au.record(r, "login.failed", "", u.ID, slog.String("reason", reason))
		}
		ok, stale, err := checkPassword(w, r, s, pw, limits, req.Email.V, account, req.Password.V)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == codeRateLimited {
			failed("rate_limited")
		}
		if err != nil {
			return err
		}
		switch {
		case !ok && account == nil:
			failed("unknown_email")
			return errBadCredentials
		case !ok:
			failed("bad_password")
			return errBadCredentials
		case !u.IsActive:
			failed("inactive")
			return newError(codeForbidden, "This account is deactivated.")
		case requireVerified && !u.EmailVerified:
			failed("unverified")
			return newError(codeEmailUnverified, "Verify your email first: follow the link we mailed you, or ask for a new one.")
		}
		if stale {
			rehashPassword(r, s, pw, u.ID, req.Password.V, logger)
		}
		st := stateFrom(ctx)
		token, hash := newToken()
		if _, err := s.createSession(ctx, hash, u.ID, sessions, header(r.Header, "User-Agent"), clientNetwork(st.clientIP)); errors.Is(err, errMissing) {
			return errBadCredentials // the account was deleted a moment ago
		} else if err != nil {
			return err
		}
		st.userID = u.ID
		if err := s.recordLoginNetwork(ctx, u.ID, clientNetwork(st.clientIP)); err != nil {
			logger.WarnContext(ctx, "could not record the login network", "error", err.Error())
		}
		au.record(r, "login.succeeded", u.ID, u.ID)
		writeJSON(w, http.StatusOK, contentJSON, tokenResponse{AccessToken: token, TokenType: "bearer", ExpiresIn: int64(sessions.ttl / time.Second)})
		return nil
	})
}

// checkPassword verifies password for account (nil when no account has
// that email: one hash is spent all the same, so timing tells nothing)
// under email's failure budgets: a failure is reserved before hashing and
// given back when the password is right, or when it could not be checked.
// The hash goes first when the caller signs in from a network the account
// used before, or is signed in already (re-authentication).
func checkPassword(w http.ResponseWriter, r *http.Request, s *store, pw *passwordHasher, limits *rateLimits, email string, account *user, password string) (ok, stale bool, err error) {
	ctx := r.Context()
	st := stateFrom(ctx)
	network := clientNetwork(st.clientIP)
	known := false
	if account != nil {
		if known, err = s.loginNetworkKnown(ctx, account.ID, network, knownNetworkTTL); err != nil {
			return false, false, err
		}
	}
	attempt, err := limits.reservePasswordFailure(w, r, email, known)
	if err != nil {
		return false, false, err
	}
	claim := hashClaim{network: network, first: known || st.user != nil}
	release := context.WithoutCancel(ctx) // a client gone mid-hash must not keep a failure it did not make
	if account == nil {
		if err := pw.burn(ctx, claim, password); err != nil {
			attempt.succeeded(release)
			return false, false, err
		}
		return false, false, nil
	}
	ok, stale, err = pw.verify(ctx, claim, password, account.passwordHash)
	if err != nil || ok {
		attempt.succeeded(release)
	}
	return ok, stale, err
}

// hashClaimOf is the request's claim on the password hasher: its client
// network, going first when first says the caller has proved something
// already (a session, a mailed link).
func hashClaimOf(r *http.Request, first bool) hashClaim {
	return hashClaim{network: clientNetwork(stateFrom(r.Context()).clientIP), first: first}
}

// rehashPassword upgrades a hash made with older parameters. A failure is
// logged, not answered: the login itself succeeded.
func rehashPassword(r *http.Request, s *store, pw *passwordHasher, userID, password string, logger *slog.Logger) {
	ctx := r.Context()
	hash, err := pw.hash(ctx, hashClaimOf(r, true), password)
	if err == nil {
		_, _, err = s.updateUser(ctx, userID, userChanges{PasswordHash: &hash}, keepSessions)
	}
	if err != nil {
		logger.WarnContext(ctx, "could not upgrade a password hash", "user_id", userID, "error", err.Error())
		return
	}
	logger.InfoContext(ctx, "password hash upgraded", "user_id", userID)
}

// decodeLogin takes the JSON body or the OAuth2 password form
// (username, password), which docs UIs send to authorize.
func decodeLogin(r *http.Request) (loginRequest, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return decode[loginRequest](r)
	}
	if err := r.ParseForm(); err != nil {
		return loginRequest{}, bodyReadError(err, "The form body could not be parsed.")
	}
	for key := range r.PostForm {
		switch key {
		case "username", "password", "grant_type", "scope", "client_id", "client_secret":
		default:
			return loginRequest{}, newError(codeBadRequest, fmt.Sprintf("The form has an unknown field %q.", key))
		}
	}
	var req loginRequest
	if vs, ok := r.PostForm["username"]; ok {
		req.Email = opt[string]{Set: true, V: vs[0]}
	}
	if vs, ok := r.PostForm["password"]; ok {
		req.Password = opt[string]{Set: true, V: vs[0]}
	}
	if g := r.PostForm.Get("grant_type"); g != "" && g != "password" {
		return req, validationError([]fieldError{{Field: "grant_type", Message: "must be password"}})
	}
	if err := check(&req); err != nil {
		// The form's field is username; name it as the client sent it.
		fields := err.(*apiError).Fields
		for i := range fields {
			if fields[i].Field == "email" {
				fields[i].Field = "username"
			}
		}
		return req, err
	}
	return req, nil
}

// handleLogout revokes the presented token at once.
func handleLogout(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.deleteSession(r.Context(), stateFrom(r.Context()).sessionHash); err != nil {
			return err
		}
		me := currentUser(r)
		au.record(r, "logout", me.ID, me.ID)
		au.countRevoked("logout", 1)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// ensureFirstSuperuser creates FIRST_SUPERUSER_EMAIL when absent; it is
// idempotent and safe when replicas start together.
func ensureFirstSuperuser(ctx context.Context, logger *slog.Logger, cfg config, s *store, pw *passwordHasher) error {
	email := normalizeEmail(cfg.FirstSuperuserEmail)
	if email == "" || cfg.FirstSuperuserPassword == "" {
		return nil
	}
	exists, err := s.userExists(ctx, email)
	if err != nil || exists {
		return err
	}
	hash, err := pw.hash(ctx, hashClaim{first: true}, cfg.FirstSuperuserPassword)
	if err != nil {
		return err
	}
	created, err := s.ensureUser(ctx, user{Email: email, passwordHash: hash, IsSuperuser: true})
	if created {
		logger.Info("first superuser created", "email", email)
	}
	return err
}
