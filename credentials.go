package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
)

// How a caller proves who they are, below the handlers that ask: a password
// under the failure budgets, a second-factor code under the same budgets
// and the ceiling on guessing, and re-authentication before a change that
// account recovery relies on.

// credentials is what checking a caller's factors, and starting the
// session they earn, draws on.
type credentials struct {
	store    *store
	hasher   *passwordHasher
	limits   *rateLimits
	mfa      *authenticator
	audit    *auditor
	mailer   *mailer
	sessions sessionPolicy
	logger   *slog.Logger
}

// checkPassword verifies password for account (nil when no account has
// that email: one hash is spent all the same, so timing tells nothing)
// under email's failure budgets: a failure is reserved before hashing and
// given back when the password is right, or when it could not be checked.
// The hash goes first when the caller signs in from a network the account
// used before, or is signed in already (re-authentication).
func (c credentials) checkPassword(w http.ResponseWriter, r *http.Request, email string, account *user, password string) (ok, stale bool, err error) {
	ctx := r.Context()
	st := stateFrom(ctx)
	network := clientNetwork(st.clientIP)
	known := false
	if account != nil {
		if known, err = c.store.loginNetworkKnown(ctx, account.ID, network, knownNetworkTTL); err != nil {
			return false, false, err
		}
	}
	attempt, err := c.limits.reservePasswordFailure(w, r, email, known)
	if err != nil {
		return false, false, err
	}
	claim := hashClaim{network: network, first: known || st.user != nil}
	release := context.WithoutCancel(ctx) // a client gone mid-hash must not keep a failure it did not make
	if account == nil {
		if err := c.hasher.burn(ctx, claim, password); err != nil {
			attempt.succeeded(release)
			return false, false, err
		}
		return false, false, nil
	}
	ok, stale, err = c.hasher.verify(ctx, claim, password, account.passwordHash)
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
func (c credentials) rehashPassword(r *http.Request, userID, password string) {
	ctx := r.Context()
	hash, err := c.hasher.hash(ctx, hashClaimOf(r, true), password)
	if err == nil {
		_, _, err = c.store.updateUser(ctx, userID, userChanges{PasswordHash: &hash}, keepSessions)
	}
	if err != nil {
		c.logger.WarnContext(ctx, "could not upgrade a password hash", "user_id", userID, "error", err.Error())
		return
	}
	c.logger.InfoContext(ctx, "password hash upgraded", "user_id", userID)
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

// errMFALocked is the second step of an account past the ceiling of wrong
// codes: lockout by design, since whoever holds the password should not
// keep trying; the mailed reset link unlocks it.
var errMFALocked = newError(codeMFALocked,
	"Too many wrong codes in a row: two-factor sign-in is locked on this account until its password is reset through a mailed link.")

// checkCode verifies a second-factor code of u, after its password, under
// the same failure budgets as a password (a failure reserved first, given
// back when the code is right) and under the account's ceiling of wrong
// codes in a row (errMFALocked once reached). A wrong code is audited, and
// the owner is mailed when the streak says someone is guessing.
func (c credentials) checkCode(w http.ResponseWriter, r *http.Request, u user, code string) (ok, recovered bool, err error) {
	ctx := r.Context()
	release := context.WithoutCancel(ctx)
	network := clientNetwork(stateFrom(ctx).clientIP)
	known, err := c.store.loginNetworkKnown(ctx, u.ID, network, knownNetworkTTL)
	if err != nil {
		return false, false, err
	}
	attempt, err := c.limits.reservePasswordFailure(w, r, u.Email, known)
	if err != nil {
		return false, false, err
	}
	streak, locked, err := c.store.reserveCodeFailure(ctx, u.ID)
	if err != nil || locked {
		attempt.succeeded(release) // nothing was checked
		if locked {
			return false, false, errMFALocked
		}
		return false, false, err
	}
	ok, recovered, err = c.mfa.verifyCode(ctx, c.store, u, code)
	switch {
	case err != nil:
		attempt.succeeded(release)
		return false, false, errors.Join(err, c.store.giveBackCodeFailure(release, u.ID))
	case ok:
		attempt.succeeded(release)
		return true, recovered, c.store.endCodeStreak(release, u.ID)
	}
	return false, false, c.codeFailed(r, u, streak)
}

// codeFailed records a wrong code of u, the streak-th in a row: an audit
// event, and at mfaAlertAfter in a row (at most once an hour) a notice
// that someone who knows the password is trying; at the ceiling, the lock's
// notice and event.
func (c credentials) codeFailed(r *http.Request, u user, streak int) error {
	ctx := context.WithoutCancel(r.Context())
	c.audit.record(r, "mfa.failed", "", u.ID)
	if streak < mfaAlertAfter {
		return nil
	}
	var event string
	err := c.store.inTx(ctx, func(tx *sql.Tx) error {
		if streak >= mfaCeiling {
			event = "mfa.locked"
			return c.mailer.mailNotice(ctx, tx, "mfa_locked", u.Email)
		}
		due, err := c.store.claimStreakAlert(ctx, tx, u.ID)
		if err != nil || !due {
			return err
		}
		event = "mfa.failed_streak"
		return c.mailer.mailNotice(ctx, tx, "mfa_failed_streak", u.Email)
	})
	if err != nil {
		return classify(err, "Notice")
	}
	if event != "" {
		c.audit.record(r, event, "", u.ID, slog.Int("streak", streak))
	}
	return nil
}

// recoveryCodeUsed audits a spent recovery code of u and mails its notice.
func (c credentials) recoveryCodeUsed(r *http.Request, u user) error {
	ctx := r.Context()
	c.audit.record(r, "mfa.recovery_code_used", u.ID, u.ID)
	err := c.store.inTx(ctx, func(tx *sql.Tx) error { return c.mailer.mailNotice(ctx, tx, "mfa_recovery_code_used", u.Email) })
	return classify(err, "Notice")
}

// reauth is the part of a request body that re-authenticates the caller
// before a change that account recovery relies on (ASVS 7.5.1): the
// current password, and on an account with a second factor a code of its
// app or an unused recovery code.
type reauth struct {
	CurrentPassword opt[string] `json:"current_password"`
	Code            opt[string] `json:"code"`
}

// valid checks the form only; reauthenticate checks the factors.
func (q reauth) valid() []fieldError {
	var p problems
	p.add("current_password", requiredPassword(q.CurrentPassword))
	if q.Code.Set {
		p.add("code", codeProblem(q.Code, true))
	}
	return p
}

// unneeded names the fields of q that a request without a change recovery
// relies on sent for nothing.
func (q reauth) unneeded(why string) []fieldError {
	var p problems
	if q.CurrentPassword.Set {
		p.add("current_password", why)
	}
	if q.Code.Set {
		p.add("code", why)
	}
	return p
}

// reauthenticate checks every factor the caller has, in this order, each
// failure counting against the login budgets:
//  1. the password: a wrong one is 422 on current_password;
//  2. on an account with a second factor, a code (TOTP or recovery): past
//     the ceiling of wrong codes in a row, 403 mfa_locked; a missing or
//     wrong one (a TOTP step already used included) is 422 on code.
//
// A recovery code it accepts is spent, audited and its notice mailed. An
// account without a second factor needs the password only.
func (c credentials) reauthenticate(w http.ResponseWriter, r *http.Request, q reauth) error {
	me := currentUser(r)
	ok, _, err := c.checkPassword(w, r, me.Email, &me, q.CurrentPassword.V)
	if err != nil {
		return err
	}
	if !ok {
		return validationError([]fieldError{{Field: "current_password", Message: "is not your current password"}})
	}
	if !me.MFAEnabled {
		return nil
	}
	ok, recovered, err := c.checkCode(w, r, me, q.Code.V)
	switch {
	case err != nil:
		return err
	case !ok && !q.Code.Set:
		return validationError([]fieldError{{Field: "code", Message: "is required: your account has two-factor sign-in; enter a code of your app, or a recovery code"}})
	case !ok:
		return validationError([]fieldError{{Field: "code", Message: "is not a code of your app, nor an unused recovery code"}})
	case recovered:
		return c.recoveryCodeUsed(r, me)
	}
	return nil
}
