package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The SQL of account tokens and of the mail outbox.

const (
	purposeReset       = "reset"
	purposeVerify      = "verify"
	purposeEmailChange = "email_change" // confirms a new address, which the account then takes

	resetTokenTTL  = 30 * time.Minute
	verifyTokenTTL = 24 * time.Hour // a verification's, and an email change's
)

// accountToken is a mailed link's token as it is stored: its hash, its
// account, what it is for, the address it is mailed to, how long it lives.
type accountToken struct {
	hash                   []byte
	userID, purpose, email string
	ttl                    time.Duration
}

// insertToken stores t, bound to the address it is mailed to. The
// account's other live tokens stay valid: nobody can void the owner's link
// by asking for another.
func (s *store) insertToken(ctx context.Context, tx *sql.Tx, t accountToken) error {
	now := s.timestamp()
	_, err := tx.ExecContext(ctx, `INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.hash, t.userID, t.purpose, t.email, now, now.Add(t.ttl))
	return err
}

// spendToken marks a live token of purpose used and returns its user and
// the address it was mailed to; a token that is unknown, spent, voided or
// expired is errMissing.
func (s *store) spendToken(ctx context.Context, tx *sql.Tx, tokenHash []byte, purpose string) (userID, email string, err error) {
	t, err := s.spendTokenOf(ctx, tx, tokenHash, purpose)
	return t.userID, t.email, err
}

// spentToken is what a spent token was issued for.
type spentToken struct {
	userID, email, purpose string
	keepSession            []byte // an email change's: the session that asked for it
}

// spendTokenOf is spendToken for a token of any of purposes, saying which.
func (s *store) spendTokenOf(ctx context.Context, tx *sql.Tx, tokenHash []byte, purposes ...string) (spentToken, error) {
	var t spentToken
	err := tx.QueryRowContext(ctx, `
		UPDATE account_tokens SET used_at = $3
		WHERE token_hash = $1 AND purpose = ANY($2) AND used_at IS NULL AND expires_at > $3
		RETURNING user_id, email, purpose, keep_session`, tokenHash, purposes, s.timestamp()).Scan(&t.userID, &t.email, &t.purpose, &t.keepSession)
	return t, classify(err, "Token")
}

// requestEmailChange records a change of userID's address to email, which
// waits for the link whose token hash is given: the account's earlier
// pending change is void, and GET /users/me shows this one until the link
// is spent, voided or expired. keepSession is the session that asked.
func (s *store) requestEmailChange(ctx context.Context, tx *sql.Tx, userID, email string, tokenHash, keepSession []byte) error {
	now := s.timestamp()
	expires := now.Add(verifyTokenTTL)
	if err := s.cancelEmailChange(ctx, tx, userID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO account_tokens (token_hash, user_id, purpose, email, created_at, expires_at, keep_session)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, tokenHash, userID, purposeEmailChange, email, now, expires, keepSession)
	if err == nil {
		_, err = tx.ExecContext(ctx, `UPDATE users SET pending_email = $2, pending_email_expires_at = $3 WHERE id = $1`, userID, email, expires)
	}
	return classify(err, "Email change")
}

// cancelEmailChange voids userID's pending email change, if any.
func (s *store) cancelEmailChange(ctx context.Context, tx *sql.Tx, userID string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`, userID, purposeEmailChange)
	if err == nil {
		_, err = tx.ExecContext(ctx, `UPDATE users SET pending_email = NULL, pending_email_expires_at = NULL WHERE id = $1`, userID)
	}
	return classify(err, "Email change")
}

// liveTokenAccount is the address a token that can still be used was
// issued for, and its account's full name, without spending it, or
// errMissing: a reset checks the token, and the new password against the
// account's email and name, before paying for a hash.
func (s *store) liveTokenAccount(ctx context.Context, tokenHash []byte, purpose string) (email string, fullName *string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT t.email, u.full_name FROM account_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3`, tokenHash, purpose, s.timestamp()).Scan(&email, &fullName)
	return email, fullName, classify(err, "Token")
}

// resetTokensSince counts the reset links issued to userID since t, spent
// ones included: the per-account cap.
func (s *store) resetTokensSince(ctx context.Context, tx *sql.Tx, userID string, t time.Time) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM account_tokens WHERE user_id = $1 AND purpose = $2 AND created_at > $3`,
		userID, purposeReset, t).Scan(&n)
	return n, err
}

// tokenMailsSince counts the reset, verification and email-change mails
// queued to recipient since t: the per-address cap.
func (s *store) tokenMailsSince(ctx context.Context, tx *sql.Tx, recipient string, t time.Time) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM mail_outbox WHERE recipient = $1 AND kind IN ($2, $3, $4) AND created_at > $5`,
		recipient, purposeReset, purposeVerify, purposeEmailChange, t).Scan(&n)
	return n, err
}

// mailCapLock is the first key of the advisory locks that make the caps
// exact: requests for one address are counted one after another.
const mailCapLock = 727_274_002

// lockRecipient holds recipient's cap lock until tx ends.
func (s *store) lockRecipient(ctx context.Context, tx *sql.Tx, recipient string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, mailCapLock, recipient)
	return err
}

// outboxRow is one mail, or one request for a mail (body nil), in the
// outbox. body is sealed: only the mailer opens it.
type outboxRow struct {
	id        int64
	kind      string
	recipient string
	body      []byte
	messageID string
	attempts  int
}

// enqueue writes r to the outbox, due now, in the caller's transaction (or
// on the pool, for a request).
func (s *store) enqueue(ctx context.Context, q dbtx, r outboxRow) error {
	_, err := q.ExecContext(ctx, `INSERT INTO mail_outbox (kind, recipient, body, message_id, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5)`,
		r.kind, r.recipient, r.body, r.messageID, s.timestamp())
	return err
}

// claimOutbox locks the oldest due row that no other worker holds (FOR
// UPDATE SKIP LOCKED: with several replicas, each row goes to one), or
// returns nil.
func (s *store) claimOutbox(ctx context.Context, tx *sql.Tx) (*outboxRow, error) {
	var r outboxRow
	err := tx.QueryRowContext(ctx, `
		SELECT id, kind, recipient, body, message_id, attempts FROM mail_outbox
		WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
		ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, s.timestamp()).
		Scan(&r.id, &r.kind, &r.recipient, &r.body, &r.messageID, &r.attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &r, err
}

// markSent records a row done: a sent mail keeps no body, only its kind,
// recipient, Message-ID, attempts and times.
func (s *store) markSent(ctx context.Context, tx *sql.Tx, id int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET sent_at = $2, attempts = attempts + 1, last_error = '', body = NULL WHERE id = $1`, id, s.timestamp())
	return err
}

// markRetry records a failed attempt and when to try again.
func (s *store) markRetry(ctx context.Context, tx *sql.Tx, id int64, retryAt time.Time, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, retryAt, reason)
	return err
}

// markFailed gives a mail up: it is not retried, keeps no body, and no
// longer counts as pending.
func (s *store) markFailed(ctx context.Context, tx *sql.Tx, id int64, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, failed_at = $2, last_error = $3, body = NULL WHERE id = $1`,
		id, s.timestamp(), reason)
	return err
}

// outboxPending counts mails (and requests) still to be sent.
func (s *store) outboxPending(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL`).Scan(&n)
	return n, err
}

// purgeOutbox deletes outbox rows finished before t, and spent or expired
// tokens.
func (s *store) purgeOutbox(ctx context.Context, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM mail_outbox WHERE coalesce(sent_at, failed_at) < $1`, t); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM account_tokens WHERE expires_at < $1 OR used_at < $1`, t)
	return err
}

// claimLegacyOutbox locks up to limit unsent rows of the previous
// release's outbox (plain bodies, written by its replicas during a rolling
// update), for the worker to adopt into mail_outbox.
func (s *store) claimLegacyOutbox(ctx context.Context, tx *sql.Tx, limit int) ([]outboxRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, kind, recipient, message FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	return collect(rows, err, func(r rowScanner) (outboxRow, error) {
		var o outboxRow
		return o, r.Scan(&o.id, &o.kind, &o.recipient, &o.body)
	})
}

// deleteLegacyOutbox removes adopted rows, and the old table's sent rows,
// which still hold their links.
func (s *store) deleteLegacyOutbox(ctx context.Context, tx *sql.Tx, ids []int64) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ANY($1) OR sent_at IS NOT NULL`, ids)
	return err
}
