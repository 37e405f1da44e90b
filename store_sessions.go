package main

import (
	"context"
	"log/slog"
	"time"
)

func (s *store) createSession(ctx context.Context, tokenHash []byte, userID string, ttl time.Duration) (time.Time, error) {
	now := s.timestamp()
	expires := now.Add(ttl)
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		tokenHash, userID, now, expires)
	return expires, classify(err, "Session")
}

// userBySession is the user behind a live session, or not_found.
func (s *store) userBySession(ctx context.Context, tokenHash []byte) (user, error) {
	row := s.db.QueryRowContext(ctx, `
		SELECT u.id, u.email, u.full_name, u.is_active, u.is_superuser, u.created_at, u.password_hash
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > $2`, tokenHash, s.timestamp())
	u, err := scanUser(row)
	return u, classify(err, "Session")
}

func (s *store) deleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return classify(err, "Session")
}

// deleteExpiredSessions keeps the table from growing with dead rows.
func (s *store) deleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, s.timestamp())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// sweepSessions deletes expired sessions and stale login networks; main
// runs it every hour.
func sweepSessions(ctx context.Context, logger *slog.Logger, s *store) {
	if n, err := s.deleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
		logger.Warn("could not delete expired sessions", "error", err.Error())
	} else if n > 0 {
		logger.Info("expired sessions deleted", "count", n)
	}
	if _, err := s.deleteStaleLoginNetworks(ctx, knownNetworkTTL); err != nil && ctx.Err() == nil {
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
