package main

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
)

// Password recovery and email verification by mailed single-use links.
// Tokens are 256 random bits, stored only as SHA-256 and bound to the
// address they were mailed to; reset links live 30 minutes, verification
// links 24 hours. A link dies with the state it was issued for (updateUserTx
// voids it). The mails themselves: mail.go.

type acceptedResponse struct {
	Detail string `json:"detail"`
}

// emailRequest is a body that names an address: a recovery or a
// verification resend.
type emailRequest struct {
	Email opt[string] `json:"email"`
}

func (q *emailRequest) normalize() { q.Email.V = normalizeEmail(q.Email.V) }

func (q emailRequest) valid() []fieldError {
	var p problems
	p.add("email", requiredEmail(q.Email))
	return p
}

// handleMailRequest answers 202 with detail after the same work (one
// insert) whether or not the address has an account: the outbox worker
// decides, off the request's path, whether a mail of kind goes out.
func handleMailRequest(s *store, au *auditor, kind, event, detail string) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[emailRequest](r)
		if err != nil {
			return err
		}
		db, err := s.conn(r.Context())
		if err != nil {
			return err
		}
		if err := s.enqueue(r.Context(), db, outboxRow{kind: kind, recipient: req.Email.V}); err != nil {
			return classify(err, "Request")
		}
		au.record(r, event, "", "")
		writeJSON(w, http.StatusAccepted, contentJSON, acceptedResponse{Detail: detail})
		return nil
	})
}

// handlePasswordRecovery is POST /auth/password-recovery.
func handlePasswordRecovery(s *store, au *auditor) http.Handler {
	return handleMailRequest(s, au, requestPasswordReset, "password.reset_requested",
		"If an account has this email, a link to reset its password is on its way.")
}

// handleVerifyEmailResend is POST /auth/verify-email/resend: nobody can
// squat an address, since its owner can always ask for a fresh link.
func handleVerifyEmailResend(s *store, au *auditor) http.Handler {
	return handleMailRequest(s, au, requestVerification, "email.verification_requested",
		"If an unverified account has this email, a link to verify it is on its way.")
}

type resetRequest struct {
	Token       opt[string] `json:"token"`
	NewPassword opt[string] `json:"new_password"`
}

func (q resetRequest) valid() []fieldError {
	var p problems
	p.add("token", requiredToken(q.Token))
	p.add("new_password", requiredPassword(q.NewPassword))
	return p
}

// errInvalidToken is a token that is unknown, spent, voided or expired.
var errInvalidToken = newError(codeInvalidToken, "The link is invalid, used or expired; ask for a new one.")

// handlePasswordReset spends a reset token: a new password, every session ended,
// the email verified (the link proved the mailbox), and a notice, in one
// transaction.
func handlePasswordReset(s *store, pw *passwordHasher, m *mailer, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[resetRequest](r)
		if err != nil {
			return err
		}
		ctx, hash := r.Context(), hashToken(req.Token.V)
		email, name, err := s.liveTokenAccount(ctx, hash, purposeReset)
		if errors.Is(err, errMissing) {
			return errInvalidToken // before paying for a hash
		} else if err != nil {
			return err
		}
		if p := newPasswordProblem(req.NewPassword.V, email, name); p != "" {
			return validationError([]fieldError{{Field: "new_password", Message: p}})
		}
		pwHash, err := pw.hash(ctx, hashClaimOf(r, true), req.NewPassword.V)
		if err != nil {
			return err
		}
		var u user
		var revoked int64
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			userID, email, err := s.spendToken(ctx, tx, hash, purposeReset)
			if err != nil {
				return err
			}
			if u, revoked, err = s.updateUserTx(ctx, tx, userID, userChanges{PasswordHash: &pwHash}, revokeSessions); err != nil {
				return err
			}
			if _, err := s.markEmailVerified(ctx, tx, userID, email); err != nil {
				return err
			}
			return m.mailNotice(ctx, tx, "password_reset", u.Email)
		})
		if errors.Is(err, errMissing) {
			return errInvalidToken // spent by a concurrent request meanwhile
		} else if err != nil {
			return classify(err, "User")
		}
		au.record(r, "password.reset", u.ID, u.ID)
		au.sessionsRevoked(r, "password_reset", u.ID, u.ID, revoked)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

type verifyRequest struct {
	Token opt[string] `json:"token"`
}

func (q verifyRequest) valid() []fieldError {
	var p problems
	p.add("token", requiredToken(q.Token))
	return p
}

// handleVerifyEmail spends a verification token: the address it was mailed to
// is verified, if it is still the account's. A token of an email change
// first makes its address the account's (confirmEmailChange).
func handleVerifyEmail(s *store, au *auditor, m *mailer) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[verifyRequest](r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		var t spentToken
		var revoked int64
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if t, err = s.spendTokenOf(ctx, tx, hashToken(req.Token.V), purposeVerify, purposeEmailChange); err != nil {
				return err
			}
			if t.purpose == purposeEmailChange {
				if revoked, err = confirmEmailChange(ctx, tx, s, m, t); err != nil {
					return err
				}
			}
			ok, err := s.markEmailVerified(ctx, tx, t.userID, t.email)
			if err == nil && !ok {
				err = errMissing // the email changed since the link was mailed
			}
			return err
		})
		if errors.Is(err, errMissing) {
			return errInvalidToken
		} else if err != nil {
			return classify(err, "Token")
		}
		if t.purpose == purposeEmailChange {
			au.record(r, "email.changed", t.userID, t.userID)
			au.sessionsRevoked(r, "email_changed", t.userID, t.userID, revoked)
		}
		au.record(r, "email.verified", t.userID, t.userID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// confirmEmailChange makes t's address its account's, in tx: the link
// proved the new mailbox. Every session ends but the one that asked for
// the change, links mailed to the old address die, the old address gets a
// notice, and no other account's change to the address waits any more. It
// returns how many sessions ended.
func confirmEmailChange(ctx context.Context, tx *sql.Tx, s *store, m *mailer, t spentToken) (int64, error) {
	u, err := s.lockUserByID(ctx, tx, t.userID)
	if err != nil || u.Email == t.email {
		return 0, err
	}
	_, revoked, err := s.updateUserTx(ctx, tx, u.ID, userChanges{Email: &t.email}, revokeOtherSessions(t.keepSession))
	if err != nil {
		return 0, err
	}
	return revoked, m.mailNotice(ctx, tx, "email_changed", u.Email)
}

// handleMeVerifyEmail mails the caller a fresh verification link,
// within the caps; an address already verified is 409.
func handleMeVerifyEmail(s *store, m *mailer) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me := currentUser(r)
		if me.EmailVerified {
			return newError(codeConflict, "Your email is already verified.")
		}
		ctx := r.Context()
		if err := s.inTx(ctx, func(tx *sql.Tx) error { return m.mailToken(ctx, tx, me, purposeVerify) }); err != nil {
			return classify(err, "Verification")
		}
		writeJSON(w, http.StatusAccepted, contentJSON, acceptedResponse{Detail: "A link to verify your email is on its way."})
		return nil
	})
}
