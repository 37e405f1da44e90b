package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The SQL of account tokens and of the outbox.

const (
	purposeReset  = "reset"
	purposeVerify = "verify"

	resetTokenTTL  = 30 * time.Minute
	verifyTokenTTL = 24 * time.Hour
)

// insertToken stores a token's hash for u. A new reset token voids the
// older ones, so only the newest link works.
func (s *store) insertToken(ctx context.Context, tx *sql.Tx, tokenHash []byte, userID, purpose, email string, ttl time.Duration) error {
	now := s.timestamp()
	if purpose == purposeReset {
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`, userID, purpose); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		tokenHash, userID, purpose, email, now, now.Add(ttl))
	return err
}

// spendToken marks a live token of purpose used and returns its user and
// email; a token that is unknown, spent or expired is errMissing.
func (s *store) spendToken(ctx context.Context, tx *sql.Tx, tokenHash []byte, purpose string) (userID, email string, err error) {
	now := s.timestamp()
	err = tx.QueryRowContext(ctx, `
		UPDATE account_tokens SET used_at = $3
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING user_id, email`, tokenHash, purpose, now).Scan(&userID, &email)
	return userID, email, classify(err, "Token")
}

// resetPassword spends a reset token and, in the same transaction, sets
// the account's password hash, ends every session and runs then. A token
// that cannot be spent is errMissing.
func (s *store) resetPassword(ctx context.Context, tokenHash []byte, passwordHash string, then ...txStep) (userID string, revoked int64, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := s.spendToken(ctx, tx, tokenHash, purposeReset)
		if err != nil {
			return err
		}
		userID = id
		_, revoked, err = s.updateUserTx(ctx, tx, id, userChanges{PasswordHash: &passwordHash}, revokeSessions, then...)
		return err
	})
	return userID, revoked, err
}

// verifyEmail spends a verification token and marks the address it was
// mailed to verified, if the account still has it; otherwise errMissing.
func (s *store) verifyEmail(ctx context.Context, tokenHash []byte) (userID string, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		id, email, err := s.spendToken(ctx, tx, tokenHash, purposeVerify)
		if err != nil {
			return err
		}
		userID = id
		res, err := tx.ExecContext(ctx, `UPDATE users SET email_verified = true WHERE id = $1 AND email = $2`, id, email)
		if err != nil {
			return classify(err, "User")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return classify(sql.ErrNoRows, "Token") // the email changed since the link was mailed
		}
		return nil
	})
	return userID, err
}

// tokenIsLive reports, without spending it, whether a token can be used:
// a reset checks it before paying for a password hash.
func (s *store) tokenIsLive(ctx context.Context, tokenHash []byte, purpose string) (bool, error) {
	var live bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM account_tokens
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3)`, tokenHash, purpose, s.timestamp()).Scan(&live)
	return live, classify(err, "Token")
}

// resetTokensSince counts the reset mails an account was sent since t: a
// few an hour at most, so the service cannot flood an inbox.
func (s *store) resetTokensSince(ctx context.Context, tx *sql.Tx, userID string, t time.Time) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM account_tokens WHERE user_id = $1 AND purpose = 'reset' AND created_at > $2`, userID, t).Scan(&n)
	return n, err
}

// enqueue writes a mail (or a recovery request, message nil) to the outbox,
// in the caller's transaction.
func (s *store) enqueue(ctx context.Context, tx interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, kind, recipient string, message []byte) error {
	now := s.timestamp()
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (kind, recipient, message, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)`,
		kind, recipient, message, now)
	return err
}

// outboxRow is one claimed row.
type outboxRow struct {
	id        int64
	kind      string
	recipient string
	message   []byte
	attempts  int
}

// claimOutbox locks the oldest due row that no other worker holds (FOR
// UPDATE SKIP LOCKED: with several replicas, each row goes to one), or
// returns nil.
func (s *store) claimOutbox(ctx context.Context, tx *sql.Tx) (*outboxRow, error) {
	var r outboxRow
	err := tx.QueryRowContext(ctx, `
		SELECT id, kind, recipient, message, attempts FROM outbox
		WHERE sent_at IS NULL AND next_attempt_at <= $1
		ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, s.timestamp()).
		Scan(&r.id, &r.kind, &r.recipient, &r.message, &r.attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &r, err
}

func (s *store) markSent(ctx context.Context, tx *sql.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE outbox SET sent_at = $2, attempts = attempts + 1, last_error = '' WHERE id = $1`, id, s.timestamp())
	return err
}

func (s *store) markFailed(ctx context.Context, tx *sql.Tx, id int64, retryAt time.Time, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, retryAt, reason)
	return err
}

// outboxPending counts mails not sent yet.
func (s *store) outboxPending(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n)
	return n, err
}

// purgeOutbox deletes rows sent before t (the messages hold links), and
// spent or expired tokens.
func (s *store) purgeOutbox(ctx context.Context, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE sent_at < $1`, t); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM account_tokens WHERE expires_at < $1 OR used_at < $1`, t)
	return err
}
