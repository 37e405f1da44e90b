package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

// How a caller proves who they are, below the handlers that ask: a password
// under the failure budgets, a second-factor code under the same budgets,
// and re-authentication before a change that account recovery relies on.

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

// reauthWithCode is a body that re-authenticates with the password and a
// second-factor code (or a recovery code).
type reauthWithCode struct {
	CurrentPassword opt[string] `json:"current_password"`
	Code            opt[string] `json:"code"`
}

func (q reauthWithCode) valid() []fieldError {
	var p problems
	p.add("current_password", requiredPassword(q.CurrentPassword))
	p.add("code", codeProblem(q.Code, true))
	return p
}

// bothFactors is the handler of a change that needs the caller's password
// and a code first: it reads and checks both (a wrong one is 422 on its
// field, and counts as a failed login), then makes the change.
func bothFactors(s *store, pw *passwordHasher, limits *rateLimits, a *authenticator, change func(w http.ResponseWriter, r *http.Request, me user) error) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[reauthWithCode](r)
		if err != nil {
			return err
		}
		me := currentUser(r)
		if !me.MFAEnabled {
			return newError(codeConflict, "Two-factor sign-in is not on.")
		}
		if err := requireCurrentPassword(w, r, s, pw, limits, req.CurrentPassword.V); err != nil {
			return err
		}
		ok, _, err := checkCode(w, r, s, limits, a, me, req.Code.V)
		if err != nil {
			return err
		}
		if !ok {
			return validationError([]fieldError{{Field: "code", Message: "is not a code of your app, nor an unused recovery code"}})
		}
		return change(w, r, me)
	})
}
