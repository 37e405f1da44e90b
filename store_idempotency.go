package main

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// The SQL of Idempotency-Key: a request's kept answer, and the transaction
// its effect and its answer share (idempotency.go says how a request gets
// there).

// idempotencyTTL is how long a key's answer is kept, and the key taken.
const idempotencyTTL = 24 * time.Hour

// keptAnswer is what a request with a key answered: replayed byte for byte
// to a repeat of it.
type keptAnswer struct {
	fingerprint []byte
	status      int
	location    string
	contentType string
	body        []byte
	secret      bool // the answer held a secret: not kept, the repeat starts over
}

// keptAnswer is the live answer kept for scope's key (errMissing when the
// key is free: never used, or its 24 hours are over).
func (s *store) keptAnswer(ctx context.Context, scope, key string) (keptAnswer, error) {
	var a keptAnswer
	err := s.db.QueryRowContext(ctx, `SELECT fingerprint, status, location, content_type, body, secret
		FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at > $3`, scope, key, s.timestamp()).
		Scan(&a.fingerprint, &a.status, &a.location, &a.contentType, &a.body, &a.secret)
	return a, classify(err, "Idempotency key")
}

// errKeyTaken is a key another request holds (its transaction is
// committing) or has answered under.
var errKeyTaken = errors.New("the idempotency key is taken")

// keepAnswer stores a's answer for scope's key in tx, the transaction of
// its effect, and so takes the key: errKeyTaken when another request holds
// it (a transaction-scoped advisory lock, tried, never waited for: it ends
// with the transaction, as a pooler in transaction mode requires) or has
// kept an answer under it that is still live. A row whose 24 hours are
// over is replaced.
func (s *store) keepAnswer(ctx context.Context, tx *sql.Tx, scope, key string, a keptAnswer) error {
	res, err := tx.ExecContext(ctx, keepAnswerSQL, s.keepArgs(scope, key, a)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errKeyTaken
	}
	return nil
}

// keepAnswerSQL keeps an answer ($1 to $10: keepArgs) and takes its key,
// or writes nothing (its RETURNING lets createItem's statement tell).
const keepAnswerSQL = `
	INSERT INTO idempotency_keys (scope, key, fingerprint, status, location, content_type, body, secret, created_at, expires_at)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE pg_try_advisory_xact_lock(hashtextextended($1 || ' ' || $2, 0))
	ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
		location = EXCLUDED.location, content_type = EXCLUDED.content_type, body = EXCLUDED.body,
		secret = EXCLUDED.secret, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
	WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
	RETURNING true`

func (s *store) keepArgs(scope, key string, a keptAnswer) []any {
	now := s.timestamp()
	return []any{scope, key, a.fingerprint, a.status, a.location, a.contentType, a.body, a.secret, now, now.Add(idempotencyTTL)}
}

// deleteStaleKeys drops the answers whose 24 hours are over.
func (s *store) deleteStaleKeys(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE expires_at <= $1`, s.timestamp())
	return err
}

// keyed is a request with an Idempotency-Key, as the store sees it (in its
// context: idempotent puts it there): the key, the request's fingerprint,
// and its transaction, begun at its first write.
type keyed struct {
	s           *store
	scope, key  string
	fingerprint []byte
	t           *sql.Tx
	err         error // beginning failed: every write fails with it
	kept        bool  // the route's own statement kept the answer (createItem)
}

type keyedKey struct{}

func keyedFrom(ctx context.Context) *keyed {
	k, _ := ctx.Value(keyedKey{}).(*keyed)
	return k
}

// tx is the request's transaction, begun at the first call.
func (k *keyed) tx(ctx context.Context) (*sql.Tx, error) {
	if k.t == nil && k.err == nil {
		k.t, k.err = k.s.db.BeginTx(ctx, nil)
	}
	return k.t, k.err
}

// conn is what a write of the request in ctx goes through: the
// transaction of its Idempotency-Key (begun at the first write, so work
// before it, such as hashing a password, holds no connection), or the
// pool. Every write of a keyed route goes through conn or inTx, so its
// effect commits with its kept answer, or not at all.
func (s *store) conn(ctx context.Context) (dbtx, error) {
	if k := keyedFrom(ctx); k != nil {
		return k.tx(ctx)
	}
	return s.db, nil
}
