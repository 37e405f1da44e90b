package main

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
)

// Password recovery and email verification by mailed single-use links.
// Tokens are 256 random bits, stored only as SHA-256; reset links live 30
// minutes, verification links 24 hours; a new reset link voids the older
// ones. Every mail is written to the outbox in the transaction of the change
// that causes it.

// verificationMail is the step that mails u a link confirming u.Email.
func (m *mailer) verificationMail(s *store) txStep {
	return func(ctx context.Context, tx *sql.Tx, u user) error {
		token, hash := newToken()
		if err := s.insertToken(ctx, tx, hash, u.ID, purposeVerify, u.Email, verifyTokenTTL); err != nil {
			return err
		}
		msg, err := m.compose("verify", u.Email, mailData{Name: deref(u.FullName), Email: u.Email, Link: m.link("/verify-email", token)})
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, "verify", u.Email, msg)
	}
}

// notice is the step that tells to (the account's address before the
// change) what just happened to the account. Its link is the frontend's
// page for asking a reset link: a notice says "if this was not you, reset
// your password at once".
func (m *mailer) notice(s *store, kind, to string, d mailData) txStep {
	return func(ctx context.Context, tx *sql.Tx, u user) error {
		d.Name, d.Email, d.Link = deref(u.FullName), to, m.link("/recover-password", "")
		msg, err := m.compose(kind, to, d)
		if err != nil {
			return err
		}
		return s.enqueue(ctx, tx, kind, to, msg)
	}
}

type acceptedResponse struct {
	Detail string `json:"detail"`
}

type recoveryRequest struct {
	Email opt[string] `json:"email"`
}

func (q *recoveryRequest) normalize() { q.Email.V = normalizeEmail(q.Email.V) }

func (q recoveryRequest) valid() []fieldError {
	var p problems
	p.add("email", requiredEmail(q.Email))
	return p
}

// handleRecovery answers 202 with the same words after the same work
// (one insert) whether or not the address has an account: the outbox worker
// decides, off the request's path, whether a reset mail goes out.
func handleRecovery(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[recoveryRequest](r)
		if err != nil {
			return err
		}
		if err := s.enqueue(r.Context(), s.db, "password_recovery", req.Email.V, nil); err != nil {
			return classify(err, "Recovery")
		}
		au.record(r, "password.reset_requested", "", "")
		writeJSON(w, http.StatusAccepted, contentJSON, acceptedResponse{Detail: "If an account has this email, a link to reset its password is on its way."})
		return nil
	})
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

// errInvalidToken is a token that is unknown, spent or expired.
var errInvalidToken = newError(codeInvalidToken, "The link is invalid, used or expired; ask for a new one.")

// handleReset spends a reset token: a new password, every session ended,
// and a notice, in one transaction.
func handleReset(s *store, pw *passwordHasher, m *mailer, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[resetRequest](r)
		if err != nil {
			return err
		}
		ctx, hash := r.Context(), hashToken(req.Token.V)
		if live, err := s.tokenIsLive(ctx, hash, purposeReset); err != nil {
			return err
		} else if !live {
			return errInvalidToken // before paying for a hash
		}
		pwHash, err := pw.hash(ctx, req.NewPassword.V)
		if err != nil {
			return err
		}
		notice := func(ctx context.Context, tx *sql.Tx, u user) error {
			return m.notice(s, "password_reset", u.Email, mailData{})(ctx, tx, u)
		}
		userID, revoked, err := s.resetPassword(ctx, hash, pwHash, notice)
		if errors.Is(err, errMissing) {
			return errInvalidToken // spent by a concurrent request meanwhile
		} else if err != nil {
			return err
		}
		au.record(r, "password.reset", userID, userID)
		au.sessionsRevoked(r, "password_reset", userID, userID, revoked)
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

// handleVerify spends a verification token: the address it was mailed to
// is verified, if it is still the account's.
func handleVerify(s *store, au *auditor) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		req, err := decode[verifyRequest](r)
		if err != nil {
			return err
		}
		userID, err := s.verifyEmail(r.Context(), hashToken(req.Token.V))
		if errors.Is(err, errMissing) {
			return errInvalidToken
		} else if err != nil {
			return err
		}
		au.record(r, "email.verified", userID, userID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// handleResendVerification mails the caller a fresh verification link; an
// address already verified is 409.
func handleResendVerification(s *store, m *mailer) http.Handler {
	return apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		me := currentUser(r)
		if me.EmailVerified {
			return newError(codeConflict, "Your email is already verified.")
		}
		if err := s.inTx(r.Context(), func(tx *sql.Tx) error { return m.verificationMail(s)(r.Context(), tx, me) }); err != nil {
			return classify(err, "Verification")
		}
		writeJSON(w, http.StatusAccepted, contentJSON, acceptedResponse{Detail: "A link to verify your email is on its way."})
		return nil
	})
}
