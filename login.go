package main

import (
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
func handleLogin(c credentials, requireVerified bool) http.Handler {
	s, au := c.store, c.audit
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
		ok, stale, err := c.checkPassword(w, r, req.Email.V, account, req.Password.V)
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
			c.rehashPassword(r, u.ID, req.Password.V)
		}
		if u.MFAEnabled {
			// Past the ceiling of wrong codes, the second step is locked: say
			// so now, to the holder of the password only.
			if locked, err := s.mfaLocked(ctx, u.ID); err != nil {
				return err
			} else if locked {
				failed("mfa_locked")
				return errMFALocked
			}
			return challengeMFA(r, s, u)
		}
		return c.startSession(w, r, u, false, "password")
	})
}

// startSession ends a login: a new session for u (mfa says whether a
// second factor made it, method whether a password or a passkey), the
// client network remembered, the audit event, and the token answered.
func (c credentials) startSession(w http.ResponseWriter, r *http.Request, u user, mfa bool, method string) error {
	ctx, st := r.Context(), stateFrom(r.Context())
	token, hash := newToken()
	started := newSession{tokenHash: hash, userID: u.ID, policy: c.sessions, userAgent: header(r.Header, "User-Agent"),
		network: clientNetwork(st.clientIP), mfa: mfa, method: method}
	if _, err := c.store.createSession(ctx, started); errors.Is(err, errMissing) {
		return errBadCredentials // the account was deleted a moment ago
	} else if err != nil {
		return err
	}
	st.userID = u.ID
	if err := c.store.recordLoginNetwork(ctx, u.ID, started.network); err != nil {
		c.logger.WarnContext(ctx, "could not record the login network", "error", err.Error())
	}
	c.audit.record(r, "login.succeeded", u.ID, u.ID, slog.String("method", method))
	if r.URL.Query().Get("session") == "cookie" {
		setSessionCookie(w, token, c.sessions.ttl)
		w.WriteHeader(http.StatusNoContent) // the body carries no token: the page never holds one
		return nil
	}
	writeJSON(w, http.StatusOK, contentJSON, tokenResponse{AccessToken: token, TokenType: "bearer", ExpiresIn: int64(c.sessions.ttl / time.Second)})
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
func handleLoginMFA(c credentials, counted func(string)) http.Handler {
	s := c.store
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
		ok, recovered, err := c.checkCode(w, r, u, req.Code.V)
		if err != nil {
			return err
		}
		if !ok {
			counted("failed")
			return errWrongCode
		}
		if err := s.spendMFAChallenge(ctx, challenge); errors.Is(err, errMissing) {
			return errMFAChallengeGone // finished by a concurrent request
		} else if err != nil {
			return err
		}
		counted("passed")
		if recovered {
			if err := c.recoveryCodeUsed(r, u); err != nil {
				return err
			}
		}
		return c.startSession(w, r, u, true, "password")
	})
}
