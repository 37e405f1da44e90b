package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// openDB opens the pool; it does not connect, so the server can start while
// the database is still down. The pool keeps what it opens under load
// (idle may equal open), and renews connections after a lifetime shortened
// by up to a tenth at random, so replicas started together do not all
// reconnect at the same moment.
func openDB(cfg config) (*sql.DB, error) {
	db, err := sql.Open("pgx", poolDSN(cfg.DatabaseURL, cfg.DBPooler))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(cfg.DBMaxOpenConns)
	db.SetMaxIdleConns(cfg.DBMaxIdleConns)
	db.SetConnMaxIdleTime(cfg.DBConnMaxIdleTime)
	db.SetConnMaxLifetime(jitter(cfg.DBConnMaxLifetime, 0.1))
	return db, nil
}

// poolDSN is the DSN the pool opens. Straight to PostgreSQL, each
// connection prepares its statements once and plans them once
// (genericPlans). Behind a transaction pooler, a server connection is
// lent for one transaction at a time, so nothing may outlive it: every
// statement is parsed, bound and run unnamed in one round trip
// (pgx's exec mode), and no startup parameter is sent.
func poolDSN(dsn, pooler string) string {
	if pooler == poolerTransaction {
		return withParam(dsn, "default_query_exec_mode", "exec")
	}
	return genericPlans(dsn)
}

// genericPlans asks PostgreSQL to plan each of the pool's prepared
// statements once (plan_cache_mode=force_generic_plan), unless the URL
// says otherwise. Every statement here is a short, indexed one, written for
// a generic plan (the item list's branches are chosen by a one-time
// filter); left to itself, PostgreSQL planned the list anew at every call
// (its generic plan's estimate for the page's position is a guess), which
// ran the item list at 0.44x (scripts/compare.sh).
func genericPlans(dsn string) string {
	if strings.Contains(dsn, "plan_cache_mode") {
		return dsn
	}
	return withParam(dsn, "plan_cache_mode", "force_generic_plan")
}

// withParam is dsn with key=value added, in either form of a DSN.
func withParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// jitter shortens d by a random share of at most frac.
func jitter(d time.Duration, frac float64) time.Duration {
	return d - time.Duration(rand.Float64()*frac*float64(d))
}

// ensureDatabase creates the database named in dsn when it is missing, so
// development starts with nothing prepared, and returns its name when it
// did. Production databases are made by their operators.
func ensureDatabase(ctx context.Context, dsn string) (created string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err // loadConfig has refused such a URL already
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" {
		return "", nil
	}
	admin := *u
	admin.Path = "/postgres"
	// One statement at a time, unnamed: this may go through a pooler.
	db, err := sql.Open("pgx", poolDSN(admin.String(), poolerTransaction))
	if err != nil {
		return "", err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return "", nil
	}
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another process
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return name, nil
}

// refusal explains a database error that retrying cannot fix, because the
// cause is the configuration: no such role, a wrong password, no such
// database, permission denied. It is "" for anything else (a server that is
// starting, restarting or not reachable yet), which is worth a retry.
func refusal(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return ""
	}
	advice := map[string]string{
		"28000": "check the user in DATABASE_URL (or create that role), and that the server's pg_hba.conf lets it in",
		"28P01": "check the password in DATABASE_URL",
		"3D000": "create that database (createdb), or change its name in DATABASE_URL",
		"42501": "grant the role what the service needs (CONNECT on the database, CREATE on its schema), or use the database's owner",
	}[pgErr.Code]
	if advice == "" {
		return ""
	}
	return fmt.Sprintf("DATABASE_URL: PostgreSQL refused: %s; %s", pgErr.Message, advice)
}

// unreachable says where the database was looked for when nothing answered.
func unreachable(err error, dsn string) string {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return ""
	}
	host := "the host in DATABASE_URL"
	if u, perr := url.Parse(dsn); perr == nil && u.Host != "" {
		host = u.Host
	}
	return "nothing answers at " + host + "; is PostgreSQL running there?"
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// migrateOn applies the migrations on db or, when migrationURL is set, on a
// connection of its own straight to PostgreSQL: past a transaction pooler,
// where a migration's long transaction would hold a pooled server.
func migrateOn(ctx context.Context, db *sql.DB, migrationURL string) (migration, error) {
	if migrationURL == "" {
		return migrate(ctx, db)
	}
	direct, err := sql.Open("pgx", migrationURL)
	if err != nil {
		return migration{}, err
	}
	defer direct.Close()
	direct.SetMaxOpenConns(1)
	return migrate(ctx, direct)
}

// migrationLockKey is an arbitrary constant: every replica takes the same
// advisory lock, so only one applies migrations at a time.
const migrationLockKey = 727_274_001

// migration is what migrate did: the versions it applied now, and the
// newest version in the schema.
type migration struct {
	applied []string
	current string
}

// migrate applies the embedded migrations in name order, each once, in one
// transaction under an advisory lock, so replicas starting together are safe.
func migrate(ctx context.Context, db *sql.DB) (migration, error) {
	var m migration
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return m, err
	}
	sort.Strings(names)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return m, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return m, err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return m, err
	}
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		m.current = version
		var done bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
			return m, err
		}
		if done {
			continue
		}
		sqlText, err := migrationFiles.ReadFile(name)
		if err != nil {
			return m, err
		}
		if _, err := tx.ExecContext(ctx, string(sqlText)); err != nil {
			return m, fmt.Errorf("migration %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
			return m, err
		}
		m.applied = append(m.applied, version)
	}
	return m, tx.Commit()
}

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

type rowScanner interface{ Scan(...any) error }

// dbtx is what a statement runs on: the pool, or a transaction a caller
// holds open for more work.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queryLeadOnce runs query, whose rows all begin with the same columns
// (lead): it decodes them from the first row only, then each row's own
// columns into own, calling each after it, and skips a row whose first own
// column is NULL (a LEFT JOIN that found nothing). It reports whether any
// row came. It reads through pgx's own API, the one place the service
// does: database/sql would decode the lead again on every row (a
// session-checked item list measured 0.69x with it, and 0.81x in two
// round trips; scripts/compare.sh, 8 rounds).
func (s *store) queryLeadOnce(ctx context.Context, query string, args, lead, own []any, each func()) (bool, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	found := false
	err = conn.Raw(func(driverConn any) error {
		rows, err := driverConn.(*stdlib.Conn).Conn().Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]any, len(lead)+len(own))
		for rows.Next() {
			clear(dest) // pgx skips a nil destination without decoding it
			if !found {
				copy(dest, lead)
			}
			hasOwn := len(own) > 0 && rows.RawValues()[len(lead)] != nil
			if hasOwn {
				copy(dest[len(lead):], own)
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			found = true
			if hasOwn {
				each()
			}
		}
		return rows.Err()
	})
	return found, err
}

// inTx runs fn in a transaction, committed when fn returns nil; in a
// request with an Idempotency-Key, in that request's (store.conn).
func (s *store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if k := keyedFrom(ctx); k != nil {
		tx, err := k.tx(ctx) // a keyed request's: it commits with the kept answer
		if err != nil {
			return err
		}
		return fn(tx)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
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

// The kinds of store error a caller can act on. Every other error the store
// returns is a bug in our SQL or our code.
var (
	errMissing   = errors.New("no such row")
	errDuplicate = errors.New("unique value taken")
	errStoreDown = errors.New("database unavailable")
)

// storeError is a database error sorted into a kind, naming the thing
// (User, Item) and, for a duplicate, the field; the cause is kept for logs.
type storeError struct {
	kind  error
	what  string
	field string
	err   error
}

func (e *storeError) Error() string {
	return e.what + ": " + e.kind.Error() + ": " + e.err.Error()
}

func (e *storeError) Unwrap() []error { return []error{e.kind, e.err} }

// classify sorts a database error: no rows, or a foreign key whose row a
// concurrent request deleted, is errMissing; a unique violation
// errDuplicate; a server or connection that cannot answer, or a schema that
// lacks what the code uses, errStoreDown. An error already sorted (by an
// inner call) is returned as it is. Anything else passes unchanged: a bug,
// answered as internal.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var se *storeError
	if errors.As(err, &se) {
		return err
	}
	var pgErr *pgconn.PgError
	kind := error(nil)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		kind = errMissing
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		kind = errDuplicate
	case errors.As(err, &pgErr) && pgErr.Code == "23503":
		kind = errMissing // what the row refers to was deleted meanwhile
	case errors.As(err, &pgErr) && (serverUnavailable(pgErr.Code) || schemaBehind(pgErr.Code)):
		kind = errStoreDown
	case errors.As(err, &pgErr):
		return fmt.Errorf("%s: %w", what, err)
	case connectionLost(err):
		kind = errStoreDown
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
	return &storeError{kind: kind, what: what, err: err}
}

// serverUnavailable is true for SQLSTATEs that mean the server, not our
// query, is the problem: connection exceptions (08), insufficient resources
// (53), operator intervention such as a shutdown (57P).
func serverUnavailable(code string) bool {
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "57P")
}

// schemaBehind is true for an undefined table (42P01), column (42703) or
// function (42883): a schema older than the code, while an upgrade's
// migrations have not run yet. It passes; it is not a bug.
func schemaBehind(code string) bool {
	return code == "42P01" || code == "42703" || code == "42883"
}

// connectionLost is true for errors of the network or the pool rather than
// of a statement: refused, reset or timed-out connections, a closed conn,
// a pool closed at shutdown (database/sql does not export that error).
func connectionLost(err error) bool {
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return strings.Contains(err.Error(), "sql: database is closed") || errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}
