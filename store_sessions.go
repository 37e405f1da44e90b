package main

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// session is one sign-in as its owner sees it. The id is public: neither
// the token nor its hash.
type session struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	ClientIP   string    `json:"client_ip"`
	Current    bool      `json:"current"`
}

func (s *store) createSession(ctx context.Context, tokenHash []byte, userID string, p sessionPolicy, userAgent, clientNetwork string) (time.Time, error) {
	now := s.timestamp()
	expires := now.Add(p.ttl)
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at, user_agent, client_ip)
		VALUES ($1, $2, $3, $3, $4, $5, $6)`,
		tokenHash, userID, now, expires, strings.ToValidUTF8(strings.ReplaceAll(userAgent, "\x00", ""), "?"), clientNetwork)
	return expires, classify(err, "Session")
}

// liveSessionSQL finds the session of a token hash ($1) that is neither
// expired at $2 nor idle since $3, with its user: the session's id and
// last use, then the user's columns. userBySession runs it alone; a page
// that needs the user runs it as the first part of its own statement.
const liveSessionSQL = `SELECT s.id AS session_id, s.last_used_at, u.id, u.email, u.full_name, u.is_active, u.is_superuser, u.email_verified, u.created_at, u.password_hash
	FROM sessions s JOIN users u ON u.id = s.user_id
	WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_used_at > $3`

// A hot read can find the session in its own statement: the statement
// starts with withLiveSession, then a query that may use the viewer's
// columns (viewer.id, viewer.is_superuser) and parameters from $4 on, then
// endLiveSession. No row means no live session; otherwise every row carries
// the session and user, then the query's columns, all NULL on the one row
// of a query that found nothing. One round trip and one snapshot, so a
// session ended a moment ago sees nothing.
const (
	withLiveSession = `WITH viewer AS (` + liveSessionSQL + `) SELECT viewer.*, found.* FROM viewer LEFT JOIN LATERAL (`
	endLiveSession  = `) found ON true`
)

// liveSessionArgs are liveSessionSQL's three arguments, at now.
func liveSessionArgs(tokenHash []byte, p sessionPolicy, now time.Time) []any {
	return []any{tokenHash, now, now.Add(-p.idle)}
}

// userBySession is the user behind a live session and the session's id, or
// errMissing. It is one read (userBySessionAnd with liveSessionSQL alone);
// once a minute at most, a second statement moves last_used_at.
func (s *store) userBySession(ctx context.Context, tokenHash []byte, p sessionPolicy) (user, string, error) {
	return s.userBySessionAnd(ctx, liveSessionSQL, tokenHash, p, nil, nil, nil)
}

// userBySessionAnd runs a withLiveSession statement with args from $4 on
// (or liveSessionSQL alone, with no dest). It returns what userBySession
// returns, and scans each row's own columns into dest (the first of them
// must not be NULL on a found row), calling each after every row. The rows
// are read through pgx itself: the session and user columns are decoded
// once, from the first row (pgx skips a nil destination without decoding
// it).
func (s *store) userBySessionAnd(ctx context.Context, query string, tokenHash []byte, p sessionPolicy, args []any, dest []any, each func()) (u user, sessionID string, err error) {
	now := s.timestamp()
	var lastUsed time.Time
	found := false
	err = s.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, query, append(liveSessionArgs(tokenHash, p, now), args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		head := append([]any{&sessionID, &lastUsed}, userFields(&u)...)
		all := make([]any, len(head)+len(dest))
		for rows.Next() {
			clear(all)
			if !found {
				copy(all, head)
			}
			has := len(dest) > 0 && rows.RawValues()[len(head)] != nil
			if has {
				copy(all[len(head):], dest)
			}
			if err := rows.Scan(all...); err != nil {
				return err
			}
			found = true
			if has {
				each()
			}
		}
		return rows.Err()
	})
	switch {
	case err != nil:
		return user{}, "", classify(err, "Session")
	case !found:
		return user{}, "", errMissing
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, sessionID, s.touchSession(ctx, tokenHash, lastUsed, now)
}

// touchSession moves a session's last_used_at to now when it is at least
// lastUsedGranularity old: most requests write nothing.
func (s *store) touchSession(ctx context.Context, tokenHash []byte, lastUsed, now time.Time) error {
	if now.Sub(lastUsed) < lastUsedGranularity {
		return nil
	}
	_, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_used_at = $2 WHERE token_hash = $1 AND last_used_at < $2`, tokenHash, now)
	return classify(err, "Session")
}

func (s *store) deleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return classify(err, "Session")
}

// sessionSessionsPageSQL is the page of the session's user's live
// sessions, newest first, with the total, in the session's own statement
// (withLiveSession): $2 and $3 are the same expiry and idle limits the
// session itself is held to.
const sessionSessionsPageSQL = withLiveSession + `SELECT count(*) OVER () AS total,
		x.id, x.created_at, x.last_used_at, x.expires_at, x.user_agent, x.client_ip FROM sessions x
	WHERE x.user_id = viewer.id AND x.expires_at > $2 AND x.last_used_at > $3
	ORDER BY x.created_at DESC, x.id DESC LIMIT $4 OFFSET $5` + endLiveSession

// sessionSessionsPage is userBySession and a page of the user's live
// sessions, with the total, in one round trip.
func (s *store) sessionSessionsPage(ctx context.Context, tokenHash []byte, p sessionPolicy, limit, offset int) (user, string, []session, int, error) {
	var x session
	return sessionPage(ctx, s, sessionSessionsPageSQL, tokenHash, p, limit, offset,
		[]any{&x.ID, &x.CreatedAt, &x.LastUsedAt, &x.ExpiresAt, &x.UserAgent, &x.ClientIP}, func() session {
			x.CreatedAt, x.LastUsedAt, x.ExpiresAt = x.CreatedAt.UTC(), x.LastUsedAt.UTC(), x.ExpiresAt.UTC()
			return x
		}, func(u user) (int, error) { return s.countSessions(ctx, u.ID, p) }, "Sessions")
}

// countSessions is the number of userID's live sessions alone, for a page
// past the last one, where no row carries it.
func (s *store) countSessions(ctx context.Context, userID string, p sessionPolicy) (int, error) {
	now := s.timestamp()
	var count int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1 AND expires_at > $2 AND last_used_at > $3`,
		userID, now, now.Add(-p.idle)).Scan(&count)
	return count, err
}

// sessionPage is userBySessionAnd for a page, the one way the item and
// session lists are read: the page query's columns are its total (count(*)
// OVER ()) and then fields', its limit and offset are $4 and $5, and row
// makes each list entry from fields once they are scanned. Past the last
// page no row carries the total, so countAll asks for it: a second round
// trip there only.
func sessionPage[T any](ctx context.Context, s *store, query string, tokenHash []byte, p sessionPolicy, limit, offset int,
	fields []any, row func() T, countAll func(user) (int, error), what string) (user, string, []T, int, error) {
	list := make([]T, 0, limit)
	var total int64
	u, sessionID, err := s.userBySessionAnd(ctx, query, tokenHash, p, []any{limit, offset},
		append([]any{&total}, fields...), func() { list = append(list, row()) })
	if err != nil {
		return user{}, "", nil, 0, err
	}
	count := int(total)
	if len(list) == 0 && offset > 0 {
		if count, err = countAll(u); err != nil {
			return user{}, "", nil, 0, classify(err, what)
		}
	}
	return u, sessionID, list, count, nil
}

// deleteSessionByID ends one of userID's sessions; someone else's id is
// errMissing, like an unknown one.
func (s *store) deleteSessionByID(ctx context.Context, userID, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id = $2`, userID, id)
	if err != nil {
		return classify(err, "Session")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return classify(sql.ErrNoRows, "Session")
	}
	return nil
}

// deleteSessions ends userID's sessions but the one whose hash is keep (nil:
// all of them) and says how many.
func (s *store) deleteSessions(ctx context.Context, userID string, keep []byte) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND token_hash IS DISTINCT FROM $2`, userID, keep)
	if err != nil {
		return 0, classify(err, "Sessions")
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// deleteExpiredSessions keeps the table from growing with dead rows.
func (s *store) deleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, s.timestamp())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepSessions deletes expired sessions, and login networks not used for
// networkTTL; main runs it every hour.
func sweepSessions(ctx context.Context, logger *slog.Logger, s *store, networkTTL time.Duration) {
	if n, err := s.deleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
		logger.Warn("could not delete expired sessions", "error", err.Error())
	} else if n > 0 {
		logger.Info("expired sessions deleted", "count", n)
	}
	if _, err := s.deleteStaleLoginNetworks(ctx, networkTTL); err != nil && ctx.Err() == nil {
		logger.Warn("could not delete stale login networks", "error", err.Error())
	}
}

// recordLoginNetwork notes that userID signed in successfully from network.
func (s *store) recordLoginNetwork(ctx context.Context, userID, network string) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO login_networks (user_id, network, last_success_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, network) DO UPDATE SET last_success_at = EXCLUDED.last_success_at`,
		userID, network, s.timestamp())
	return classify(err, "Login network")
}

// loginNetworkKnown reports whether userID signed in successfully from
// network within ttl.
func (s *store) loginNetworkKnown(ctx context.Context, userID, network string, ttl time.Duration) (bool, error) {
	var known bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM login_networks
		WHERE user_id = $1 AND network = $2 AND last_success_at > $3)`, userID, network, s.timestamp().Add(-ttl)).Scan(&known)
	return known, classify(err, "Login network")
}

// deleteStaleLoginNetworks forgets networks not used for ttl.
func (s *store) deleteStaleLoginNetworks(ctx context.Context, ttl time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM login_networks WHERE last_success_at <= $1`, s.timestamp().Add(-ttl))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
