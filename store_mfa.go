package main

import (
	"context"
	"database/sql"
	"time"
)

// The SQL of the second factor: TOTP enrolments, recovery codes, and the
// pending MFA step of a login.

// totpEnrolment is an account's authenticator: its secret, sealed, whether
// a code confirmed it, and the last time step accepted.
type totpEnrolment struct {
	sealed    []byte
	confirmed bool
	lastStep  int64
}

// startTOTP stores a pending enrolment for userID, replacing a pending one;
// a confirmed one is kept, and started is false.
func (s *store) startTOTP(ctx context.Context, userID string, sealed []byte) (started bool, err error) {
	db, err := s.conn(ctx)
	if err != nil {
		return false, err
	}
	res, err := db.ExecContext(ctx, `
		INSERT INTO mfa_totp (user_id, secret, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = EXCLUDED.created_at, last_step = 0
		WHERE mfa_totp.confirmed_at IS NULL`, userID, sealed, s.timestamp())
	if err != nil {
		return false, classify(err, "Authenticator")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// totpOf is userID's enrolment, or errMissing.
func (s *store) totpOf(ctx context.Context, userID string) (totpEnrolment, error) {
	var e totpEnrolment
	err := s.db.QueryRowContext(ctx, `SELECT secret, confirmed_at IS NOT NULL, last_step FROM mfa_totp WHERE user_id = $1`, userID).
		Scan(&e.sealed, &e.confirmed, &e.lastStep)
	return e, classify(err, "Authenticator")
}

// acceptTOTPStep records step as the last one used, if it is later than the
// last: a code is accepted once (replay), by whichever request is first.
func (s *store) acceptTOTPStep(ctx context.Context, q dbtx, userID string, step int64, confirm bool) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE mfa_totp SET last_step = $2,
		confirmed_at = CASE WHEN $3 THEN $4 ELSE confirmed_at END
		WHERE user_id = $1 AND last_step < $2 AND (confirmed_at IS NULL) = $3`, userID, step, confirm, s.timestamp())
	if err != nil {
		return false, classify(err, "Authenticator")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// enableMFA turns the confirmed factor on for userID.
func (s *store) enableMFA(ctx context.Context, tx *sql.Tx, userID string) error {
	_, err := tx.ExecContext(ctx, `UPDATE users SET mfa_enabled = true WHERE id = $1`, userID)
	return classify(err, "User")
}

// replaceRecoveryCodes voids userID's recovery codes and stores the hashes
// of new ones.
func (s *store) replaceRecoveryCodes(ctx context.Context, tx *sql.Tx, userID string, hashes [][]byte) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return classify(err, "Recovery codes")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO mfa_recovery_codes (code_hash, user_id, created_at) SELECT h, $2, $3 FROM unnest($1::bytea[]) h`,
		hashes, userID, s.timestamp())
	return classify(err, "Recovery codes")
}

// recoveryCodesLeft is how many of userID's recovery codes are unused.
func (s *store) recoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n)
	return n, classify(err, "Recovery codes")
}

// useRecoveryCode spends one of userID's unused recovery codes, by hash.
func (s *store) useRecoveryCode(ctx context.Context, userID string, hash []byte) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mfa_recovery_codes SET used_at = $3 WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL`,
		hash, userID, s.timestamp())
	if err != nil {
		return false, classify(err, "Recovery codes")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// createMFAChallenge stores the pending second step of a login: userID
// gave the right password from network; the token's hash completes it.
func (s *store) createMFAChallenge(ctx context.Context, tokenHash []byte, userID, network string, ttl time.Duration) error {
	now := s.timestamp()
	_, err := s.db.ExecContext(ctx, `INSERT INTO mfa_challenges (token_hash, user_id, network, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		tokenHash, userID, network, now, now.Add(ttl))
	return classify(err, "Sign-in")
}

// mfaChallenge is the live challenge of a token hash: its user and
// network, or errMissing for one unknown, spent or expired.
func (s *store) mfaChallenge(ctx context.Context, tokenHash []byte) (userID, network string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT user_id, network FROM mfa_challenges WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`,
		tokenHash, s.timestamp()).Scan(&userID, &network)
	return userID, network, classify(err, "Sign-in")
}

// spendMFAChallenge marks a live challenge used; one spent meanwhile is
// errMissing.
func (s *store) spendMFAChallenge(ctx context.Context, tokenHash []byte) error {
	res, err := s.db.ExecContext(ctx, `UPDATE mfa_challenges SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`,
		tokenHash, s.timestamp())
	if err != nil {
		return classify(err, "Sign-in")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return classify(sql.ErrNoRows, "Sign-in")
	}
	return nil
}

// deleteStaleMFAChallenges forgets expired challenges.
func (s *store) deleteStaleMFAChallenges(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM mfa_challenges WHERE expires_at <= $1`, s.timestamp())
	return err
}

// The ceiling on second-factor guessing (NIST 800-63B 5.2.2): wrong codes
// in a row, over every network, before the second step refuses every code
// until a password reset; and the streak after which the owner is told.
const (
	mfaCeiling    = 100
	mfaAlertAfter = 5
	mfaAlertEvery = time.Hour
)

// reserveCodeFailure counts one more wrong code for userID before the code
// is checked, so concurrent guesses cannot pass the ceiling: it returns
// the streak with this one, or locked (and counts nothing) when the
// account has reached the ceiling.
func (s *store) reserveCodeFailure(ctx context.Context, userID string) (streak int, locked bool, err error) {
	var before int
	err = s.db.QueryRowContext(ctx, `
		WITH before AS (SELECT mfa_failures FROM users WHERE id = $1 FOR UPDATE)
		UPDATE users SET mfa_failures = least(before.mfa_failures + 1, $2) FROM before WHERE users.id = $1
		RETURNING before.mfa_failures`, userID, mfaCeiling).Scan(&before)
	if err != nil {
		return 0, false, classify(err, "User")
	}
	return before + 1, before >= mfaCeiling, nil
}

// endCodeStreak: a right code ends the streak.
func (s *store) endCodeStreak(ctx context.Context, userID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE users SET mfa_failures = 0 WHERE id = $1 AND mfa_failures > 0`, userID)
	return classify(err, "User")
}

// giveBackCodeFailure takes back a reserved failure whose code could not
// be checked.
func (s *store) giveBackCodeFailure(ctx context.Context, userID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE users SET mfa_failures = greatest(mfa_failures - 1, 0) WHERE id = $1`, userID)
	return classify(err, "User")
}

// mfaLocked reports whether userID's second step refuses every code.
func (s *store) mfaLocked(ctx context.Context, userID string) (bool, error) {
	var locked bool
	err := s.db.QueryRowContext(ctx, `SELECT mfa_failures >= $2 FROM users WHERE id = $1`, userID, mfaCeiling).Scan(&locked)
	return locked, classify(err, "User")
}

// claimStreakAlert reports whether the owner of userID is due the "someone
// knows your password" notice (none in the last mfaAlertEvery), and if so
// records it as sent, in tx.
func (s *store) claimStreakAlert(ctx context.Context, tx *sql.Tx, userID string) (bool, error) {
	now := s.timestamp()
	res, err := tx.ExecContext(ctx, `UPDATE users SET mfa_alerted_at = $2 WHERE id = $1 AND (mfa_alerted_at IS NULL OR mfa_alerted_at <= $3)`,
		userID, now, now.Add(-mfaAlertEvery))
	if err != nil {
		return false, classify(err, "User")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
