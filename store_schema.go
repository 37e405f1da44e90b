package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// Whether the schema is the one this build expects, for /health: during an
// upgrade a replica may run before its migrations have (see migrate).

// latestMigration is the newest embedded migration's version: the schema
// this build's code expects.
func latestMigration() string {
	names, _ := fs.Glob(migrationFiles, "migrations/*.sql")
	sort.Strings(names)
	return strings.TrimSuffix(strings.TrimPrefix(names[len(names)-1], "migrations/"), ".sql")
}

// schemaProbe names every table and column the code uses, each table in a
// query that returns no row: it fails (42P01, 42703) when the schema lacks
// one, as between the start of an upgrade and the end of its migration, or
// after a change made by hand. Keep it in step with the store's SQL.
const schemaProbe = `
SELECT ` + userColumns + ` FROM users LIMIT 0;
SELECT ` + itemColumns + ` FROM items LIMIT 0;
SELECT id, token_hash, user_id, created_at, last_used_at, expires_at, user_agent, client_ip, mfa, method FROM sessions LIMIT 0;
SELECT token_hash, user_id, purpose, email, created_at, expires_at, used_at, keep_session FROM account_tokens LIMIT 0;
SELECT mfa_failures, mfa_alerted_at FROM users LIMIT 0;
SELECT id, kind, recipient, body, message_id, created_at, next_attempt_at, attempts, last_error, sent_at, failed_at FROM mail_outbox LIMIT 0;
SELECT id, kind, recipient, message, sent_at FROM outbox LIMIT 0;
SELECT user_id, network, last_success_at FROM login_networks LIMIT 0;
SELECT policy, key, win, curr, prev, counted FROM rate_limits LIMIT 0;
SELECT owner_id, n FROM item_counts LIMIT 0;
SELECT n FROM user_total LIMIT 0;
SELECT user_id, secret, created_at, confirmed_at, last_step FROM mfa_totp LIMIT 0;
SELECT code_hash, user_id, created_at, used_at FROM mfa_recovery_codes LIMIT 0;
SELECT token_hash, user_id, network, created_at, expires_at, used_at FROM mfa_challenges LIMIT 0;
SELECT webauthn_handle FROM users LIMIT 0;
SELECT ` + passkeyColumns + ` FROM passkeys LIMIT 0;
SELECT challenge_hash, purpose, user_id, session_hash, network, created_at, expires_at FROM webauthn_challenges LIMIT 0;
SELECT scope, key, fingerprint, status, location, content_type, body, secret, created_at, expires_at FROM idempotency_keys LIMIT 0`

// errSchemaBehind is a schema older than the code.
var errSchemaBehind = errors.New("the database schema is older than this build")

// checkSchema reports whether the schema is the one this build expects:
// its newest migration applied, and every table and column the code uses
// present. /health fails until it is.
func (s *store) checkSchema(ctx context.Context) error {
	var version sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		return classify(err, "Schema")
	}
	if version.String < latestMigration() {
		return fmt.Errorf("%w: at %q, want %q", errSchemaBehind, version.String, latestMigration())
	}
	if _, err := s.db.ExecContext(ctx, schemaProbe); err != nil {
		return fmt.Errorf("%w: %w", errSchemaBehind, err)
	}
	return nil
}
