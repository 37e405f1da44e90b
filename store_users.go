package main

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"
)

// user is an account. The hash never leaves the server: it has no JSON name.
type user struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	FullName      *string   `json:"full_name"`
	IsActive      bool      `json:"is_active"`
	IsSuperuser   bool      `json:"is_superuser"`
	EmailVerified bool      `json:"email_verified"`
	MFAEnabled    bool      `json:"mfa_enabled"`
	PendingEmail  *string   `json:"pending_email"` // an email change waiting for its link
	CreatedAt     time.Time `json:"created_at"`
	Version       int64     `json:"version"` // grows at every change of the row: the ETag
	passwordHash  string
	pendingUntil  *time.Time // when the pending change's link expires
	sessionMFA    bool       // read with a session: a second factor made it
}

const userColumns = `id, email, full_name, is_active, is_superuser, email_verified, mfa_enabled, pending_email, pending_email_expires_at, created_at, version, password_hash`

// scanUser reads a user's columns, after any leading ones into lead. A
// pending email change whose link has expired is no longer shown.
func (s *store) scanUser(row rowScanner, lead ...any) (user, error) {
	var u user
	err := row.Scan(append(lead, userFields(&u)...)...)
	u.CreatedAt = u.CreatedAt.UTC()
	u.hideExpiredPending(s.now())
	return u, err
}

// hideExpiredPending forgets a pending email change whose link has expired
// by now: it is void, whether or not a janitor has cleared it yet.
func (u *user) hideExpiredPending(now time.Time) {
	if u.pendingUntil == nil || !u.pendingUntil.After(now) {
		u.PendingEmail = nil
	}
}

// userFields are the scan destinations of userColumns, in order (a row
// read by hand then calls hideExpiredPending, as scanUser does).
func userFields(u *user) []any {
	return []any{&u.ID, &u.Email, &u.FullName, &u.IsActive, &u.IsSuperuser, &u.EmailVerified, &u.MFAEnabled, &u.PendingEmail, &u.pendingUntil, &u.CreatedAt, &u.Version, &u.passwordHash}
}

// voidEmailChangesTo is a statement's leading CTEs that void every pending
// email change to the address $1: an address someone holds now is
// reserved by nobody's unconfirmed change.
const voidEmailChangesTo = `WITH voided AS (
		DELETE FROM account_tokens WHERE purpose = 'email_change' AND used_at IS NULL AND email = $1
	), cleared AS (
		UPDATE users SET pending_email = NULL, pending_email_expires_at = NULL WHERE pending_email = $1
	) `

// createUser inserts u, on the pool or in the caller's transaction (which
// may go on to mail the new account a link), voiding any pending change of
// another account to its address.
func (s *store) createUser(ctx context.Context, q dbtx, u user) (user, error) {
	created, err := s.scanUser(q.QueryRowContext(ctx, voidEmailChangesTo+`
		INSERT INTO users (email, full_name, password_hash, is_active, is_superuser, email_verified, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING `+userColumns,
		u.Email, u.FullName, u.passwordHash, u.IsActive, u.IsSuperuser, u.EmailVerified, s.timestamp()))
	return created, userError(err)
}

// userError names the field of a conflict: the email is the one unique
// value a user has.
func userError(err error) error {
	err = classify(err, "User")
	var se *storeError
	if errors.As(err, &se) && se.kind == errDuplicate {
		se.field = "email"
	}
	return err
}

func (s *store) userByID(ctx context.Context, id string) (user, error) {
	u, err := s.scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	return u, userError(err)
}

// lockUserByID is the user id, locked until tx ends: what an update is
// about to change.
func (s *store) lockUserByID(ctx context.Context, tx *sql.Tx, id string) (user, error) {
	u, err := s.scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
	return u, userError(err)
}

func (s *store) userByEmail(ctx context.Context, email string) (user, error) {
	u, err := s.scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = $1`, email))
	return u, userError(err)
}

// lockUserByEmail is the user with email, locked until tx ends: the outbox
// worker holds it while it decides whether a requested mail goes out.
func (s *store) lockUserByEmail(ctx context.Context, tx *sql.Tx, email string) (user, error) {
	u, err := s.scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = $1 FOR UPDATE`, email))
	return u, userError(err)
}

// markEmailVerified verifies id's email if it is still email (a link
// vouches for the address it was mailed to), and says whether it was.
func (s *store) markEmailVerified(ctx context.Context, tx *sql.Tx, id, email string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE users SET email_verified = true WHERE id = $1 AND email = $2`, id, email)
	if err != nil {
		return false, classify(err, "User")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// usersPageSQL is a page of users after a position ($1, $2), newest first:
// $3 rows from $4 on.
const usersPageSQL = `SELECT ` + userColumns + ` FROM users WHERE (created_at, id) < ($1, $2)
	ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4`

// listUsers is a page of every user, newest first, one past the limit,
// after a position, on the index (created_at, id), and their number, kept
// with the rows (user_total).
func (s *store) listUsers(ctx context.Context, q pageQuery) ([]user, int, error) {
	var count int
	if err := s.db.QueryRowContext(ctx, `SELECT n FROM user_total`).Scan(&count); err != nil {
		return nil, 0, classify(err, "Users")
	}
	rows, err := s.db.QueryContext(ctx, usersPageSQL, q.after.createdAt, q.after.id, q.limit+1, q.offset)
	users, err := collect(rows, err, func(r rowScanner) (user, error) { return s.scanUser(r) })
	return users, count, classify(err, "Users")
}

// at is a user's place in the list of users.
func (u user) at() position { return position{createdAt: u.CreatedAt, id: u.ID} }

// userChanges are the columns an update sets; nil leaves a column alone.
// full_name can be cleared, so it says apart whether it is set.
type userChanges struct {
	Email        *string
	SetFullName  bool
	FullName     *string
	PasswordHash *string
	IsActive     *bool
	IsSuperuser  *bool
	DisableMFA   bool // the second factor goes: its secret, its recovery codes
}

// sessionRevocation is what an update does to the user's sessions.
type sessionRevocation struct {
	revoke bool
	keep   []byte // the token hash of a session that survives, if any
}

var keepSessions = sessionRevocation{}

// revokeSessions ends every session of the user (and so, in updateUser,
// every unused reset link).
var revokeSessions = sessionRevocation{revoke: true}

// revokeOtherSessions ends every session but the one with hash keep.
func revokeOtherSessions(keep []byte) sessionRevocation {
	return sessionRevocation{revoke: true, keep: keep}
}

// revocation is what an admin's change does to the user's sessions: a new
// password, a deactivation or the second factor taken off ends them all.
func (c userChanges) revocation() sessionRevocation {
	if c.PasswordHash != nil || (c.IsActive != nil && !*c.IsActive) || c.DisableMFA {
		return revokeSessions
	}
	return keepSessions
}

// updateUser applies changes in a transaction of its own; see updateUserTx.
func (s *store) updateUser(ctx context.Context, id string, c userChanges, sessions sessionRevocation) (user, int64, error) {
	var u user
	var revoked int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, revoked, err = s.updateUserTx(ctx, tx, id, c, sessions)
		return err
	})
	return u, revoked, err
}

// updateUserTx applies changes in tx, deletes the user's sessions as
// sessions says, and voids the account tokens the change outlives: every
// link mailed to an address the account no longer has, and, when sessions
// end (a new password, a deactivation, an email change), every unused
// reset link. It returns how many sessions it ended.
func (s *store) updateUserTx(ctx context.Context, tx *sql.Tx, id string, c userChanges, sessions sessionRevocation) (user, int64, error) {
	if c.Email != nil {
		// The address is this account's now: nobody else's change waits for it.
		if _, err := tx.ExecContext(ctx, voidEmailChangesTo+`SELECT`, *c.Email); err != nil {
			return user{}, 0, classify(err, "User")
		}
	}
	// A new password or the second factor taken off ends the streak of
	// wrong codes (and so the lock).
	row := tx.QueryRowContext(ctx, `
		UPDATE users SET
			email         = COALESCE($2, email),
			full_name     = CASE WHEN $3 THEN $4 ELSE full_name END,
			password_hash = COALESCE($5, password_hash),
			email_verified = CASE WHEN $2::text IS NOT NULL AND $2 <> email THEN false ELSE email_verified END,
			is_active     = COALESCE($6, is_active),
			is_superuser  = COALESCE($7, is_superuser),
			mfa_enabled   = mfa_enabled AND NOT $8,
			mfa_failures  = CASE WHEN $5::text IS NOT NULL OR $8 THEN 0 ELSE mfa_failures END
		WHERE id = $1
		RETURNING `+userColumns,
		id, c.Email, c.SetFullName, c.FullName, c.PasswordHash, c.IsActive, c.IsSuperuser, c.DisableMFA)
	u, err := s.scanUser(row)
	if err != nil {
		return user{}, 0, userError(err)
	}
	var revoked int64
	if sessions.revoke {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2`, id, sessions.keep)
		if err != nil {
			return user{}, 0, classify(err, "Sessions")
		}
		revoked, _ = res.RowsAffected()
	}
	if c.DisableMFA {
		for _, table := range []string{"mfa_totp", "mfa_recovery_codes"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1`, id); err != nil {
				return user{}, 0, classify(err, "Second factor")
			}
		}
	}
	if sessions.revoke || c.Email != nil {
		// Links die with the state they were issued for, and a pending email
		// change with them.
		_, err := tx.ExecContext(ctx, `DELETE FROM account_tokens WHERE user_id = $1 AND used_at IS NULL
			AND (email <> $2 OR purpose = $5 OR (purpose = $3 AND $4))`, id, u.Email, purposeReset, sessions.revoke, purposeEmailChange)
		if err == nil {
			// the version the answer's ETag names is the row's after this
			err = tx.QueryRowContext(ctx, `UPDATE users SET pending_email = NULL, pending_email_expires_at = NULL WHERE id = $1 AND pending_email IS NOT NULL
				RETURNING version`, id).Scan(&u.Version)
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
		}
		if err != nil {
			return user{}, 0, classify(err, "Tokens")
		}
		u.PendingEmail, u.pendingUntil = nil, nil
	}
	// A login waiting for its second step dies with the password, the
	// address, the sessions or the factor it was started under.
	if sessions.revoke || c.Email != nil || c.PasswordHash != nil || c.DisableMFA {
		if _, err := tx.ExecContext(ctx, `DELETE FROM mfa_challenges WHERE user_id = $1`, id); err != nil {
			return user{}, 0, classify(err, "Sign-in")
		}
	}
	return u, revoked, nil
}

// deleteUser removes the user; their items and sessions go by cascade.
// deleteUser deletes the user if p holds, in one statement.
func (s *store) deleteUser(ctx context.Context, id string, p precondition) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = $1 AND ($2::bigint[] IS NULL OR version = ANY ($2))`, id, p.versions)
	if err != nil {
		return classify(err, "User")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var version int64
		if err := s.db.QueryRowContext(ctx, `SELECT version FROM users WHERE id = $1`, id).Scan(&version); err != nil {
			return classify(err, "User")
		}
		return p.failed(version)
	}
	return nil
}

// checkUserVersion holds user id's row for the rest of tx and checks p
// against its version: a change of several statements is conditional as
// one statement would be.
func (s *store) checkUserVersion(ctx context.Context, tx *sql.Tx, id string, p precondition) error {
	if p.versions == nil {
		return nil
	}
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&version); err != nil {
		return classify(err, "User")
	}
	if !slices.Contains(p.versions, version) {
		return p.failed(version)
	}
	return nil
}

// ensureUser inserts u unless its email exists; two replicas racing here
// both succeed and one row results.
func (s *store) ensureUser(ctx context.Context, u user) (created bool, err error) {
	res, err := s.db.ExecContext(ctx, voidEmailChangesTo+`
		INSERT INTO users (email, full_name, password_hash, is_active, is_superuser, email_verified, created_at)
		VALUES ($1, $2, $3, true, $4, true, $5)
		ON CONFLICT (lower(email)) DO NOTHING`,
		u.Email, u.FullName, u.passwordHash, u.IsSuperuser, s.timestamp())
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *store) userExists(ctx context.Context, email string) (bool, error) {
	var exists bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = $1)`, email).Scan(&exists)
	return exists, err
}
