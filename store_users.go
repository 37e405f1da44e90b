package main

import (
	"context"
	"database/sql"
	"time"
)

// store is the SQL behind the API; now is the clock, injectable for tests.
type store struct {
	db  *sql.DB
	now func() time.Time
}

// timestamp is now as PostgreSQL keeps it (UTC, microseconds), so what a
// create returns equals what a later read returns.
func (s *store) timestamp() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// user is an account. The hash never leaves the server: it has no JSON name.
type user struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	FullName     *string   `json:"full_name"`
	IsActive     bool      `json:"is_active"`
	IsSuperuser  bool      `json:"is_superuser"`
	CreatedAt    time.Time `json:"created_at"`
	passwordHash string
}

const userColumns = `id, email, full_name, is_active, is_superuser, created_at, password_hash`

type rowScanner interface{ Scan(...any) error }

func scanUser(row rowScanner) (user, error) {
	var u user
	err := row.Scan(&u.ID, &u.Email, &u.FullName, &u.IsActive, &u.IsSuperuser, &u.CreatedAt, &u.passwordHash)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

func (s *store) createUser(ctx context.Context, u user) (user, error) {
	row := s.db.QueryRowContext(ctx, `
		INSERT INTO users (email, full_name, password_hash, is_active, is_superuser, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+userColumns,
		u.Email, u.FullName, u.passwordHash, u.IsActive, u.IsSuperuser, s.timestamp())
	created, err := scanUser(row)
	return created, userError(err)
}

// userError names the conflict a user can act on.
func userError(err error) error {
	err = dbError(err, "User")
	if ae, ok := err.(*apiError); ok && ae.Code == codeConflict {
		ae.Detail = "A user with this email already exists."
		ae.Fields = []fieldError{{Field: "email", Message: "is already registered"}}
	}
	return err
}

func (s *store) userByID(ctx context.Context, id string) (user, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	return u, userError(err)
}

func (s *store) userByEmail(ctx context.Context, email string) (user, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = $1`, email))
	return u, userError(err)
}

func (s *store) listUsers(ctx context.Context, p page) ([]user, int, error) {
	var count int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&count); err != nil {
		return nil, 0, dbError(err, "Users")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users
		ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2`, p.limit, p.offset)
	users, err := collect(rows, err, scanUser)
	return users, count, dbError(err, "Users")
}

// collect scans every row of a query (or passes on the query's error); an
// empty result is an empty slice, which encodes as [] rather than null.
func collect[T any](rows *sql.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// userChanges are the columns an update sets; nil leaves a column alone.
type userChanges struct {
	Email        *string
	FullName     opt[*string]
	PasswordHash *string
	IsActive     *bool
	IsSuperuser  *bool
}

// revokes reports whether the change must end the user's sessions: a new
// password set by an admin, or a deactivation.
func (c userChanges) revokes() bool {
	return c.PasswordHash != nil || (c.IsActive != nil && !*c.IsActive)
}

// updateUser applies changes and, in the same transaction, deletes the
// user's sessions other than keepSession when the change calls for it.
func (s *store) updateUser(ctx context.Context, id string, c userChanges, revoke bool, keepSession []byte) (user, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return user{}, dbError(err, "User")
	}
	defer tx.Rollback()
	row := tx.QueryRowContext(ctx, `
		UPDATE users SET
			email         = COALESCE($2, email),
			full_name     = CASE WHEN $3 THEN $4 ELSE full_name END,
			password_hash = COALESCE($5, password_hash),
			is_active     = COALESCE($6, is_active),
			is_superuser  = COALESCE($7, is_superuser)
		WHERE id = $1
		RETURNING `+userColumns,
		id, c.Email, c.FullName.Set, c.FullName.V, c.PasswordHash, c.IsActive, c.IsSuperuser)
	u, err := scanUser(row)
	if err != nil {
		return user{}, userError(err)
	}
	if revoke {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2`, id, keepSession); err != nil {
			return user{}, dbError(err, "Sessions")
		}
	}
	return u, dbError(tx.Commit(), "User")
}

// deleteUser removes the user; their items and sessions go by cascade.
func (s *store) deleteUser(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return dbError(err, "User")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errNotFound("User")
	}
	return nil
}

// ensureUser inserts u unless its email exists; two replicas racing here
// both succeed and one row results.
func (s *store) ensureUser(ctx context.Context, u user) (created bool, err error) {
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO users (email, full_name, password_hash, is_active, is_superuser, created_at)
		VALUES ($1, $2, $3, true, $4, $5)
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
