package main

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// openDB opens the pool; it does not connect, so the server can start while
// the database is still down.
func openDB(cfg config) (*sql.DB, error) {
	db, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(cfg.DBMaxOpenConns)
	db.SetMaxIdleConns(cfg.DBMaxIdleConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	return db, nil
}

// ensureDatabase creates the database named in dsn when it is missing, so
// development starts with nothing prepared. Production databases are made
// by their operators.
func ensureDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return errors.New("DATABASE_URL is not a URL; create the database by hand")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		return nil
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("pgx", admin.String())
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another process
		return nil
	}
	return err
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// migrationLockKey is an arbitrary constant: every replica takes the same
// advisory lock, so only one applies migrations at a time.
const migrationLockKey = 727_274_001

// migrate applies the embedded migrations in name order, each once, in one
// transaction under an advisory lock, so replicas starting together are safe.
func migrate(ctx context.Context, db *sql.DB) (applied []string, err error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, err
	}
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		var done bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
			return nil, err
		}
		if done {
			continue
		}
		sqlText, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, string(sqlText)); err != nil {
			return nil, fmt.Errorf("migration %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
			return nil, err
		}
		applied = append(applied, version)
	}
	return applied, tx.Commit()
}

// dbError sorts a database error into the contract's codes: no rows is
// not_found, a unique violation is conflict, a lost connection is
// unavailable, and any other SQL error is internal. The cause stays in the
// error for the log.
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return errNotFound(what)
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return &apiError{Code: codeConflict, Detail: what + " already exists.", Err: err}
	case errors.As(err, &pgErr) && serverUnavailable(pgErr.Code):
		return unavailable(err)
	case errors.As(err, &pgErr):
		return fmt.Errorf("%s: %w", what, err) // a bug in our SQL: internal
	case errors.Is(err, context.Canceled):
		return err
	default:
		return unavailable(err)
	}
}

// serverUnavailable is true for SQLSTATEs that mean the server, not our
// query, is the problem: connection exceptions (08), insufficient resources
// (53) and operator intervention such as a shutdown (57P).
func serverUnavailable(code string) bool {
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "57P")
}
