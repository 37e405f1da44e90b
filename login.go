package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"time"
)

// Signing in: the password (checked under the failure budgets, the hash
// shared fairly), then, for an account with a second factor, a code; and
// re-authentication, which checks the same way.

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
		if err := sessionKindProblem(r); err != nil {
			return err
		}
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
		if u.MFAEnabled {
			return challengeMFA(r, s, u)
		}
		return startSession(w, r, s, au, sessions, u, false, logger)
	})
}

// startSession ends a login: a new session for u (mfa says whether a
// second factor made it), the client network remembered, the audit event,
// and the token answered.
func startSession(w http.ResponseWriter, r *http.Request, s *store, au *auditor, sessions sessionPolicy, u user, mfa bool, logger *slog.Logger) error {
	ctx, st := r.Context(), stateFrom(r.Context())
	token, hash := newToken()
	if _, err := s.createSession(ctx, hash, u.ID, sessions, header(r.Header, "User-Agent"), clientNetwork(st.clientIP), mfa); errors.Is(err, errMissing) {
		return errBadCredentials // the account was deleted a moment ago
	} else if err != nil {
		return err
	}
	st.userID = u.ID
	if err := s.recordLoginNetwork(ctx, u.ID, clientNetwork(st.clientIP)); err != nil {
		logger.WarnContext(ctx, "could not record the login network", "error", err.Error())
	}
	au.record(r, "login.succeeded", u.ID, u.ID)
	if r.URL.Query().Get("session") == "cookie" {
		setSessionCookie(w, token, sessions.ttl)
		w.WriteHeader(http.StatusNoContent) // the body carries no token: the page never holds one
		return nil
	}
	writeJSON(w, http.StatusOK, contentJSON, tokenResponse{AccessToken: token, TokenType: "bearer", ExpiresIn: int64(sessions.ttl / time.Second)})
	return nil
}

// sessionKindProblem checks the query of a login: ?session=cookie asks for
// a browser session (the cookie) instead of a bearer token.
func sessionKindProblem(r *http.Request) error {
	q := r.URL.Query()
	if fields := repeatedParams(q, "session"); len(fields) > 0 {
		return validationError(fields)
	}
	if v, set := q["session"]; set && v[0] != "cookie" {
		return validationError([]fieldError{{Field: "session", Message: "must be cookie (a browser session), or absent for a bearer token"}})
	}
	return nil
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
	if fields := repeatedParams(r.PostForm, "username", "password", "grant_type"); len(fields) > 0 {
		return loginRequest{}, validationError(fields)
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

// verifyCode checks a code of u's confirmed factor: a TOTP code, whose step
// is then spent, or a recovery code, then used. recovered says which.
func (a *authenticator) verifyCode(ctx context.Context, s *store, u user, code string) (ok, recovered bool, err error) {
	if k := recoveryCodeKey(code); k != "" {
		ok, err = s.useRecoveryCode(ctx, u.ID, hashToken(k))
		return ok, ok, err
	}
	e, err := s.totpOf(ctx, u.ID)
	if errors.Is(err, errMissing) || (err == nil && !e.confirmed) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	secret, err := a.sealer.open(e.sealed, []byte(u.ID))
	if err != nil {
		return false, false, err
	}
	step, ok := matchTOTP(secret, a.now(), code)
	if !ok {
		return false, false, nil
	}
	ok, err = s.acceptTOTPStep(ctx, s.db, u.ID, step, false) // false again for a step already used
	return ok, false, err
}

// checkCode verifies a second-factor code of u under the same failure
// budgets as a password: a failure is reserved first and given back when
// the code is right.
func checkCode(w http.ResponseWriter, r *http.Request, s *store, limits *rateLimits, a *authenticator, u user, code string) (ok, recovered bool, err error) {
	ctx := r.Context()
	network := clientNetwork(stateFrom(ctx).clientIP)
	known, err := s.loginNetworkKnown(ctx, u.ID, network, knownNetworkTTL)
	if err != nil {
		return false, false, err
	}
	attempt, err := limits.reservePasswordFailure(w, r, u.Email, known)
	if err != nil {
		return false, false, err
	}
	ok, recovered, err = a.verifyCode(ctx, s, u, code)
	if err != nil || ok {
		attempt.succeeded(context.WithoutCancel(ctx))
	}
	return ok, recovered, err
}

// mfaChallengeTTL is how long the second step of a login may wait.
const mfaChallengeTTL = 5 * time.Minute

// challengeMFA answers the right password of an account with a second
// factor: 401 mfa_required, with the token of the login's second step.
func challengeMFA(r *http.Request, s *store, u user) error {
	st := stateFrom(r.Context())
	token, hash := newToken()
	if err := s.createMFAChallenge(r.Context(), hash, u.ID, clientNetwork(st.clientIP), mfaChallengeTTL); err != nil {
		return err
	}
	st.userID = u.ID
	return &apiError{Code: codeMFARequired, MFAToken: token,
		Detail: "Enter the code from your authenticator app, or a recovery code, to finish signing in."}
}

type mfaLoginRequest struct {
	MFAToken opt[string] `json:"mfa_token"`
	Code     opt[string] `json:"code"`
}

func (q mfaLoginRequest) valid() []fieldError {
	var p problems
	p.add("mfa_token", requiredToken(q.MFAToken))
	p.add("code", codeProblem(q.Code, true))
	return p
}

var (
	errMFAChallengeGone = newError(codeUnauthorized, "This sign-in has expired, or was finished elsewhere; sign in again with your password.")
	errWrongCode        = newError(codeUnauthorized, "The code is not right; try the next one your app shows.")
)

// handleLoginMFA is POST /auth/login/mfa: the second step of a login. The
// mfa_token is single use, lives 5 minutes and works only from the client
// network that gave the password; a wrong code counts against the login's
// failure budgets, like a wrong password.
func handleLoginMFA(s *store, limits *rateLimits, a *authenticator, au *auditor, m *mailer, sessions sessionPolicy, counted func(string), logger *slog.Logger) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err := sessionKindProblem(r); err != nil {
			return err
		}
		req, err := decode[mfaLoginRequest](r)
		if err != nil {
			return err
		}
		ctx, st := r.Context(), stateFrom(r.Context())
		challenge := hashToken(req.MFAToken.V)
		userID, network, err := s.mfaChallenge(ctx, challenge)
		if errors.Is(err, errMissing) || (err == nil && network != clientNetwork(st.clientIP)) {
			counted("expired")
			return errMFAChallengeGone
		} else if err != nil {
			return err
		}
		u, err := s.userByID(ctx, userID)
		if errors.Is(err, errMissing) || (err == nil && !u.IsActive) {
			return errMFAChallengeGone
		} else if err != nil {
			return err
		}
		ok, recovered, err := checkCode(w, r, s, limits, a, u, req.Code.V)
		if err != nil {
			return err
		}
		if !ok {
			counted("failed")
			au.record(r, "mfa.failed", "", u.ID)
			return errWrongCode
		}
		if err := s.spendMFAChallenge(ctx, challenge); errors.Is(err, errMissing) {
			return errMFAChallengeGone // finished by a concurrent request
		} else if err != nil {
			return err
		}
		counted("passed")
		if recovered {
			au.record(r, "mfa.recovery_code_used", u.ID, u.ID)
			if err := s.inTx(ctx, func(tx *sql.Tx) error { return m.mailNotice(ctx, tx, "mfa_recovery_code_used", u.Email) }); err != nil {
				return classify(err, "Notice")
			}
		}
		return startSession(w, r, s, au, sessions, u, true, logger)
	})
}

// requireCurrentPassword re-authenticates the caller. A wrong password is
// 422 on current_password (401 would sign the frontend out), and counts
// against the account's failure budgets like a failed login.
func requireCurrentPassword(w http.ResponseWriter, r *http.Request, s *store, pw *passwordHasher, limits *rateLimits, password string) error {
	me := currentUser(r)
	ok, _, err := checkPassword(w, r, s, pw, limits, me.Email, &me, password)
	if err != nil {
		return err
	}
	if !ok {
		return validationError([]fieldError{{Field: "current_password", Message: "is not your current password"}})
	}
	return nil
}
