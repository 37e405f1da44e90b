package main

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"time"
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
	MFA        bool      `json:"mfa"`    // made through a second factor
	Method     string    `json:"method"` // password or passkey
	Current    bool      `json:"current"`
}

// newSession is a sign-in about to become a session: the hash of its
// token, its user, the policy it runs under, where it came from, and
// whether a second factor made it.
type newSession struct {
	tokenHash          []byte
	userID             string
	policy             sessionPolicy
	userAgent, network string
	mfa                bool
	method             string // password or passkey
}

// createSession stores n and returns when it expires.
func (s *store) createSession(ctx context.Context, n newSession) (time.Time, error) {
	now := s.timestamp()
	expires := now.Add(n.policy.ttl)
	userAgent := n.userAgent
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at, user_agent, client_ip, mfa, method)
		VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)`,
		n.tokenHash, n.userID, now, expires, strings.ToValidUTF8(strings.ReplaceAll(userAgent, "\x00", ""), "?"), n.network, n.mfa, n.method)
	return expires, classify(err, "Session")
}

// liveSessionSQL finds the session of a token hash ($1) that is neither
// expired at $2 nor idle since $3, with its user: the session's id, last
// use and whether a second factor made it, then the user's columns.
const liveSessionSQL = `SELECT s.id AS session_id, s.last_used_at, s.mfa AS session_mfa, u.id, u.email, u.full_name, u.is_active, u.is_superuser, u.email_verified, u.mfa_enabled, u.pending_email, u.pending_email_expires_at, u.created_at, u.version, u.password_hash
	FROM sessions s JOIN users u ON u.id = s.user_id
	WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_used_at > $3`

// userBySession is the user behind a live session and the session's id, or
// errMissing: one read. Once a minute at most, a second statement moves
// last_used_at.
func (s *store) userBySession(ctx context.Context, tokenHash []byte, p sessionPolicy) (user, string, error) {
	now := s.timestamp()
	var sessionID string
	var lastUsed time.Time
	var mfa bool
	u, err := s.scanUser(s.db.QueryRowContext(ctx, liveSessionSQL, tokenHash, now, now.Add(-p.idle)), &sessionID, &lastUsed, &mfa)
	if err != nil {
		return user{}, "", classify(err, "Session")
	}
	u.sessionMFA = mfa
	return u, sessionID, s.touchSession(ctx, tokenHash, lastUsed, now)
}

// sessionReadSQL is read joined to the live session: every row carries the
// session, its user and the total count finds (NULL is none), then read's
// own columns, NULL on the one row of a read that found nothing; no row
// means no live session. count is a query of one row, over viewer.
func sessionReadSQL(count, read string) string {
	return `WITH viewer AS (` + liveSessionSQL + `)
		SELECT viewer.*, coalesce(counted.total, 0)::bigint, found.*
		FROM viewer LEFT JOIN LATERAL (` + count + `) counted ON true LEFT JOIN LATERAL (` + read + `) found ON true`
}

// sessionRead is a read run in the statement that finds the session
// (readAsSession).
type sessionRead struct {
	sql  string // may use the CTE viewer (viewer.id is the user's, viewer.is_superuser); parameters from $4
	args []any
	own  []any  // a row read found is scanned into own, ...
	each func() // ... then each is called
	// count, when set, is a query of one row over viewer, its column
	// total the number of rows the read pages through, read into total.
	count string
	total *int
}

// readAsSession runs read in the statement that finds the session: one
// round trip for both, and one snapshot, so a session ended a moment ago
// reads nothing. It returns the session's user and id, errMissing when no
// session is live.
func (s *store) readAsSession(ctx context.Context, tokenHash []byte, p sessionPolicy, read sessionRead) (user, string, error) {
	now := s.timestamp()
	var u user
	var sessionID string
	var lastUsed time.Time
	lead := append([]any{&sessionID, &lastUsed, &u.sessionMFA}, userFields(&u)...)
	count := "SELECT 0 AS total"
	total := new(int)
	if read.count != "" {
		count, total = read.count, read.total
	}
	found, err := s.queryLeadOnce(ctx, sessionReadSQL(count, read.sql), append([]any{tokenHash, now, now.Add(-p.idle)}, read.args...),
		append(lead, total), read.own, read.each)
	u.hideExpiredPending(now)
	switch {
	case err != nil:
		return user{}, "", classify(err, "Session")
	case !found:
		return user{}, "", classify(sql.ErrNoRows, "Session")
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

// sessionsPageSQL is a page of the live sessions of the session's user,
// newest first: $6 rows from $7 on, after the position ($4, $5), on the
// index (user_id, created_at, id). $2 and $3 are the limits the session
// itself is held to.
const sessionsPageSQL = `SELECT x.id, x.created_at, x.last_used_at, x.expires_at, x.user_agent, x.client_ip, x.mfa, x.method FROM sessions x
	WHERE x.user_id = viewer.id AND x.expires_at > $2 AND x.last_used_at > $3 AND (x.created_at, x.id) < ($4, $5)
	ORDER BY x.created_at DESC, x.id DESC LIMIT $6 OFFSET $7`

// sessionsCountSQL counts the user's live sessions up to countCap+1:
// their total is not kept with the rows (a session ends by the clock).
const sessionsCountSQL = `SELECT count(*) AS total FROM (SELECT FROM sessions x
	WHERE x.user_id = viewer.id AND x.expires_at > $2 AND x.last_used_at > $3 LIMIT ` + countCapPlusOne + `) live`

// at is a session's place in its user's list.
func (x session) at() position { return position{createdAt: x.CreatedAt, id: x.ID} }

// sessionsPageAs is the session's user and a page of their live sessions,
// one past the limit, with their count (at most countCap+1), in one round
// trip.
func (s *store) sessionsPageAs(ctx context.Context, tokenHash []byte, p sessionPolicy, q pageQuery) (user, string, []session, int, error) {
	var x session
	var total int
	list := make([]session, 0, q.limit+1)
	u, sessionID, err := s.readAsSession(ctx, tokenHash, p, sessionRead{
		sql: sessionsPageSQL, args: []any{q.after.createdAt, q.after.id, q.limit + 1, q.offset},
		own: []any{&x.ID, &x.CreatedAt, &x.LastUsedAt, &x.ExpiresAt, &x.UserAgent, &x.ClientIP, &x.MFA, &x.Method},
		each: func() {
			x.CreatedAt, x.LastUsedAt, x.ExpiresAt = x.CreatedAt.UTC(), x.LastUsedAt.UTC(), x.ExpiresAt.UTC()
			list = append(list, x)
		},
		count: sessionsCountSQL, total: &total,
	})
	return u, sessionID, list, total, err
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

// sweepSessions deletes expired sessions, MFA steps of a login, passkey
// challenges and Idempotency-Key answers, and login networks not used for
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
	if err := s.deleteStaleMFAChallenges(ctx); err != nil && ctx.Err() == nil {
		logger.Warn("could not delete expired MFA challenges", "error", err.Error())
	}
	if err := s.deleteStaleChallenges(ctx); err != nil && ctx.Err() == nil {
		logger.Warn("could not delete expired passkey challenges", "error", err.Error())
	}
	if err := s.deleteStaleKeys(ctx); err != nil && ctx.Err() == nil {
		logger.Warn("could not delete expired idempotency keys", "error", err.Error())
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
