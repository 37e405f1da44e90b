package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// How a caller proves who they are, below the handlers that ask: a password
// under the failure budgets, a second-factor code under the same budgets
// and the ceiling on guessing, a passkey's assertion under them too, and
// re-authentication before a change that account recovery relies on.

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
	rp       webauthnRP // passkeys: the relying party
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
// app or an unused recovery code; or, in place of both, a fresh assertion
// of one of the caller's passkeys with the user verified (its challenge
// from POST /auth/passkey/options).
type reauth struct {
	CurrentPassword opt[string]          `json:"current_password"`
	Code            opt[string]          `json:"code"`
	Passkey         opt[json.RawMessage] `json:"passkey"`
}

// valid checks the form only; reauthenticate checks the factors.
func (q reauth) valid() []fieldError {
	var p problems
	if q.withPasskey() {
		if q.CurrentPassword.Set || q.Code.Set {
			p.add("passkey", "comes in place of current_password and code, not with them")
		}
		return p
	}
	p.add("current_password", requiredPassword(q.CurrentPassword))
	if q.Code.Set {
		p.add("code", codeProblem(q.Code, true))
	}
	return p
}

// withPasskey says the caller re-authenticates with a passkey.
func (q reauth) withPasskey() bool { return q.Passkey.Set && !q.Passkey.Null }

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
	if q.Passkey.Set {
		p.add("passkey", why)
	}
	return p
}

// reauthenticate checks every factor the caller has (or a passkey that is
// both: checkPasskey), in this order, each failure counting against the
// login budgets:
//  1. the password: a wrong one is 422 on current_password;
//  2. on an account with a second factor, a code (TOTP or recovery): past
//     the ceiling of wrong codes in a row, 403 mfa_locked; a missing or
//     wrong one (a TOTP step already used included) is 422 on code.
//
// A recovery code it accepts is spent, audited and its notice mailed. An
// account without a second factor needs the password only.
func (c credentials) reauthenticate(w http.ResponseWriter, r *http.Request, q reauth) error {
	me := currentUser(r)
	if q.withPasskey() {
		_, _, err := c.checkPasskey(w, r, q.Passkey.V, &me, func(user) bool { return true })
		if err == errNotAssertion || err == errPasskeyRefused {
			return validationError([]fieldError{{Field: "passkey", Message: "is not a fresh assertion of one of your passkeys, with you verified"}})
		}
		return err
	}
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

// errPasskeyRefused is every refused passkey assertion, in the same words
// whatever the reason (the audit event names it).
var errPasskeyRefused = newError(codeUnauthorized, "This passkey could not sign you in; try again, or sign in with your password.")

// checkPasskey verifies a passkey assertion (AuthenticationResponseJSON),
// the WebAuthn Level 3 way: the challenge (spent, once), the origin, the
// RP id's hash, a present user, the signature with the stored public key,
// and a signature counter that grows. for is the account it must belong
// to (re-authentication), or nil (sign-in: the passkey's userHandle must
// be its account's). needUV says a verified user is required. A failure
// counts against the login budgets: the account's once the credential is
// known, the client network's otherwise. Each outcome is audited. It
// answers the account and whether the user was verified (UV).
func (c credentials) checkPasskey(w http.ResponseWriter, r *http.Request, raw json.RawMessage, account *user, needUV func(user) bool) (u user, verified bool, err error) {
	ctx := r.Context()
	var a assertionJSON
	if err := json.Unmarshal(raw, &a); err != nil {
		return user{}, false, errNotAssertion
	}
	failed := func(userID, reason string) {
		c.audit.record(r, "passkey.failed", "", userID, slog.String("reason", reason))
	}
	d, err := decodeAnswer(a.RawID, a.Type, a.Response.ClientDataJSON, a.Response.AuthenticatorData)
	sig, sigErr := unb64(a.Response.Signature)
	if err == nil && (sigErr != nil || len(sig) == 0) {
		err = errors.New("signature is not base64url")
	}
	if err != nil {
		failed("", "malformed: "+err.Error())
		if err := c.limits.countUnknownCredential(w, r); err != nil {
			return user{}, false, err
		}
		return user{}, false, errPasskeyRefused
	}
	p, err := c.store.passkeyByCredential(ctx, d.rawID)
	if errors.Is(err, errMissing) {
		failed("", "unknown_credential")
		if err := c.limits.countUnknownCredential(w, r); err != nil {
			return user{}, false, err
		}
		return user{}, false, errPasskeyRefused
	} else if err != nil {
		return user{}, false, err
	}
	u, err = c.store.userByID(ctx, p.userID)
	if err != nil {
		return u, false, err
	}
	known, err := c.store.loginNetworkKnown(ctx, u.ID, clientNetwork(stateFrom(ctx).clientIP), knownNetworkTTL)
	if err != nil {
		return u, false, err
	}
	attempt, err := c.limits.reservePasswordFailure(w, r, u.Email, known)
	if err != nil {
		failed(u.ID, "rate_limited")
		return u, false, err
	}
	reason, err := c.verifyPasskey(r, d, sig, a.Response.UserHandle, p, u, account, needUV)
	if err != nil {
		attempt.succeeded(context.WithoutCancel(ctx)) // nothing was checked
		return u, false, err
	}
	if reason != "" {
		failed(u.ID, reason)
		return u, false, errPasskeyRefused
	}
	attempt.succeeded(context.WithoutCancel(ctx))
	c.audit.record(r, "passkey.used", u.ID, u.ID, slog.String("passkey_id", p.ID))
	return u, d.ad.has(flagUV), nil
}

// errNotAssertion is a body whose credential is not even shaped as an
// assertion of the browser's toJSON() (an assertion whose parts do not
// decode is refused as any other: errPasskeyRefused).
var errNotAssertion = validationError([]fieldError{{Field: "credential",
	Message: "is not a passkey assertion as PublicKeyCredential.toJSON() gives it (rawId, type, response.clientDataJSON, authenticatorData, signature, userHandle)"}})

// verifyPasskey checks an assertion d of passkey p (of account u) and
// answers why it is refused ("" when it is not), or an error of the store.
// The challenge is spent first, so it answers one assertion, right or not.
func (c credentials) verifyPasskey(r *http.Request, d decoded, sig []byte, userHandle *string, p passkey, u user, account *user, needUV func(user) bool) (string, error) {
	ctx := r.Context()
	challenge, err := unb64(d.cd.Challenge)
	if err != nil {
		return "challenge", nil
	}
	hash := sha256.Sum256(challenge)
	if _, err := c.store.spendChallenge(ctx, hash[:], "authenticate"); errors.Is(err, errMissing) {
		return "challenge", nil
	} else if err != nil {
		return "", err
	}
	if err := c.rp.check(d.cd, d.ad, "webauthn.get"); err != nil {
		return "ceremony: " + err.Error(), nil
	}
	switch {
	case account != nil && account.ID != u.ID:
		return "another_account", nil
	case account == nil && userHandle == nil:
		return "no_user_handle", nil
	}
	if userHandle != nil {
		handle, err := c.store.userWebauthnHandle(ctx, u.ID)
		if err != nil {
			return "", err
		}
		if got, err := unb64(*userHandle); err != nil || string(got) != string(handle) {
			return "another_account", nil
		}
	}
	key, err := parsePublicKey(p.publicKey, p.algorithm)
	if err != nil {
		return "", err // stored keys were checked when they were registered
	}
	if !verifySignature(key, d.authenticatorData, d.clientDataJSON, sig) {
		return "signature", nil
	}
	if needUV(u) && !d.ad.has(flagUV) {
		return "user_not_verified", nil
	}
	grew, err := c.store.passkeyUsed(ctx, p, d.ad.signCount, d.ad.has(flagBS))
	if err != nil {
		return "", err
	}
	if !grew {
		return "sign_count", nil // a cloned authenticator, or a concurrent use
	}
	return "", nil
}
