package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
)

var errUnauthenticated = newError(codeUnauthorized, "Sign in: the bearer token or session cookie is missing, invalid or expired.")

// requireUser lets a request through only with a live session of an active
// user, whom it records in the request state.
func requireUser(s *store, p sessionPolicy) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
			token := sessionToken(r)
			if token == "" {
				return errUnauthenticated
			}
			hash := hashToken(token)
			u, sessionID, err := s.userBySession(r.Context(), hash, p)
			if err := admit(r, p, hash, u, sessionID, err); err != nil {
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
	token := sessionToken(r)
	if token == "" {
		return errUnauthenticated
	}
	hash := hashToken(token)
	if bad != nil {
		read = func(hash []byte) (user, string, error) { return s.userBySession(r.Context(), hash, p) }
	}
	u, sessionID, err := read(hash)
	if err := admit(r, p, hash, u, sessionID, err); err != nil {
		return err
	}
	return bad
}

// admit judges a session lookup for the token hash: a live session of an
// active user is recorded in the request state; anything else is 401, or
// the lookup's own error. An account that must enrol a second factor and
// has not is 403 here, unless p is a route it may use to enrol.
func admit(r *http.Request, p sessionPolicy, hash []byte, u user, sessionID string, err error) error {
	switch {
	case errors.Is(err, errMissing) || (err == nil && !u.IsActive):
		return errUnauthenticated
	case err != nil:
		return err
	}
	st := stateFrom(r.Context())
	st.user, st.userID, st.sessionHash, st.sessionID = &u, u.ID, hash, sessionID
	if mustEnrol(p, u) {
		return errMustEnrol
	}
	return nil
}

// mustEnrol reports whether u may do nothing under p but enrol a second
// factor: MFA_REQUIRED covers the account, it has no authenticator app and
// its session was not made by a second factor (a user-verified passkey),
// and the route is not one of those it may use to enrol.
func mustEnrol(p sessionPolicy, u user) bool {
	return mfaRequiredFor(p, u) && !u.MFAEnabled && !u.sessionMFA && !p.enrolling
}

// mfaRequiredFor reports whether MFA_REQUIRED covers u.
func mfaRequiredFor(p sessionPolicy, u user) bool {
	return p.mfaRequired == "all" || (p.mfaRequired == "superusers" && u.IsSuperuser)
}

var errMustEnrol = newError(codeMFAEnrollment, "This account must turn on two-factor sign-in first: enrol an authenticator app, or add a passkey and sign in with it, in your settings.")

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
	p.add("password", firstOf(requiredPassword(q.Password), newPasswordProblem(q.Password.V, q.Email.V, q.FullName.V)))
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
		writeTagged(w, http.StatusCreated, u.Version, u)
		return nil
	})
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
		if hasSessionCookie(r) {
			clearSessionCookie(w)
		}
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
