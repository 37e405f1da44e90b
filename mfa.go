package main

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"net/http"
)

// The second factor's settings: enrol an authenticator, confirm it, turn it
// off, make new recovery codes. Starting an enrolment needs the password;
// turning it off and new codes need every factor (reauthenticate); each
// change is mailed and audited.

// currentPassword is a body that re-authenticates with the password.
type currentPassword struct {
	CurrentPassword opt[string] `json:"current_password"`
}

func (q currentPassword) valid() []fieldError {
	var p problems
	p.add("current_password", requiredPassword(q.CurrentPassword))
	return p
}

type totpEnrolmentResponse struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

var errMFAAlreadyOn = newError(codeConflict, "Two-factor sign-in is already on; turn it off first to enrol another app.")

// handleTOTPStart is POST /users/me/mfa/totp: a pending enrolment, after
// the current password (a stolen session alone cannot bind an app). An
// account with a factor already is 409 before anything is checked.
func handleTOTPStart(c credentials) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[currentPassword](r)
		if err != nil {
			return err
		}
		me := currentUser(r)
		if me.MFAEnabled {
			return errMFAAlreadyOn
		}
		if err := c.reauthenticate(w, r, reauth{CurrentPassword: req.CurrentPassword}); err != nil {
			return err
		}
		secret := make([]byte, secretBytes)
		rand.Read(secret)
		s, a := c.store, c.mfa
		started, err := s.startTOTP(r.Context(), me.ID, a.sealer.seal(secret, []byte(me.ID)))
		if err != nil {
			return err
		}
		if !started {
			return errMFAAlreadyOn // confirmed by a concurrent request
		}
		writeJSON(w, http.StatusOK, contentJSON, totpEnrolmentResponse{Secret: base32NoPad.EncodeToString(secret), OTPAuthURI: a.otpauthURI(me.Email, secret)})
		return nil
	})
}

type codeRequest struct {
	Code opt[string] `json:"code"`
}

func (q codeRequest) valid() []fieldError {
	var p problems
	p.add("code", codeProblem(q.Code, false))
	return p
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// handleTOTPConfirm is POST /users/me/mfa/totp/confirm: a code from the
// app proves it holds the secret; MFA is on, and ten recovery codes are
// shown, once.
func handleTOTPConfirm(s *store, a *authenticator, au *auditor, m *mailer) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[codeRequest](r)
		if err != nil {
			return err
		}
		ctx, me := r.Context(), currentUser(r)
		e, err := s.totpOf(ctx, me.ID)
		switch {
		case errors.Is(err, errMissing) || (err == nil && e.confirmed):
			return newError(codeConflict, "There is no enrolment to confirm: start one first.")
		case err != nil:
			return err
		}
		secret, err := a.sealer.open(e.sealed, []byte(me.ID))
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, a.now(), req.Code.V)
		if !ok {
			return validationError([]fieldError{{Field: "code", Message: "is not the code your app shows now"}})
		}
		codes, hashes := newRecoveryCodes()
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			confirmed, err := s.acceptTOTPStep(ctx, tx, me.ID, step, true)
			if err != nil || !confirmed {
				return errors.Join(err, errMissing)
			}
			if err := s.enableMFA(ctx, tx, me.ID); err != nil {
				return err
			}
			if err := s.replaceRecoveryCodes(ctx, tx, me.ID, hashes); err != nil {
				return err
			}
			return m.mailNotice(ctx, tx, "mfa_enabled", me.Email)
		})
		if errors.Is(err, errMissing) {
			return newError(codeConflict, "There is no enrolment to confirm: start one first.")
		} else if err != nil {
			return classify(err, "Authenticator")
		}
		au.record(r, "mfa.enabled", me.ID, me.ID)
		writeJSON(w, http.StatusOK, contentJSON, recoveryCodesResponse{RecoveryCodes: codes})
		return nil
	})
}

var errMFANotOn = newError(codeConflict, "Two-factor sign-in is not on.")

// factorOwner reads and checks a re-authentication body (every factor),
// and answers the caller, whose second factor must be on: 409 otherwise,
// once the checks have passed.
func factorOwner(c credentials, w http.ResponseWriter, r *http.Request) (user, error) {
	req, err := decode[reauth](r)
	if err != nil {
		return user{}, err
	}
	if err := c.reauthenticate(w, r, req); err != nil {
		return user{}, err
	}
	if me := currentUser(r); me.MFAEnabled {
		return me, nil
	}
	return user{}, errMFANotOn
}

// mfaStatus is the second factor as its owner sees it: whether it is on,
// and how many recovery codes are left to spend.
type mfaStatus struct {
	Enabled           bool `json:"enabled"`
	RecoveryCodesLeft int  `json:"recovery_codes_left"`
}

// handleMFAStatus is GET /users/me/mfa, which an account that must enrol
// may read too (its settings page shows it).
func handleMFAStatus(s *store) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me := currentUser(r)
		left, err := s.recoveryCodesLeft(r.Context(), me.ID)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, contentJSON, mfaStatus{Enabled: me.MFAEnabled, RecoveryCodesLeft: left})
		return nil
	})
}

// handleMFADisable is DELETE /users/me/mfa: the factor and its recovery
// codes go, re-authenticated with every factor.
func handleMFADisable(c credentials) http.Handler {
	s, au, m := c.store, c.audit, c.mailer
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me, err := factorOwner(c, w, r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if _, _, err := s.updateUserTx(ctx, tx, me.ID, userChanges{DisableMFA: true}, keepSessions); err != nil {
				return err
			}
			return m.mailNotice(ctx, tx, "mfa_disabled", me.Email)
		})
		if err != nil {
			return classify(err, "User")
		}
		au.record(r, "mfa.disabled", me.ID, me.ID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// handleRecoveryCodes is POST /users/me/mfa/recovery-codes: ten new codes,
// shown once; the old ones are void. Re-authenticated with every factor.
func handleRecoveryCodes(c credentials) http.Handler {
	s, au, m := c.store, c.audit, c.mailer
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me, err := factorOwner(c, w, r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		codes, hashes := newRecoveryCodes()
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.replaceRecoveryCodes(ctx, tx, me.ID, hashes); err != nil {
				return err
			}
			return m.mailNotice(ctx, tx, "mfa_codes_regenerated", me.Email)
		})
		if err != nil {
			return classify(err, "Recovery codes")
		}
		au.record(r, "mfa.codes_regenerated", me.ID, me.ID)
		writeJSON(w, http.StatusOK, contentJSON, recoveryCodesResponse{RecoveryCodes: codes})
		return nil
	})
}
