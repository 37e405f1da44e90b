package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"time"
)

// The SQL of passkeys: the account's WebAuthn handle, the ceremonies'
// challenges, and the passkeys themselves.

// passkey is a registered passkey as its owner sees it, and what verifying
// its assertions needs (unexported: never answered).
type passkey struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at"`
	BackupEligible bool       `json:"backup_eligible"`
	BackedUp       bool       `json:"backed_up"`
	Device         *string    `json:"device"` // the provider, from a known AAGUID

	userID       string
	credentialID []byte
	publicKey    []byte
	algorithm    int
	signCount    int64
	userVerified bool
	transports   string // comma-separated, as the browser listed them
	aaguid       string
}

// maxPasskeys is how many passkeys one account may hold.
const maxPasskeys = 20

// passkeyColumns and passkeyFields read a passkey row.
const passkeyColumns = `id, name, created_at, last_used_at, backup_eligible, backed_up, user_id, credential_id, public_key, algorithm,
	sign_count, user_verified, transports, aaguid`

func passkeyFields(p *passkey) []any {
	return []any{&p.ID, &p.Name, &p.CreatedAt, &p.LastUsedAt, &p.BackupEligible, &p.BackedUp, &p.userID, &p.credentialID, &p.publicKey,
		&p.algorithm, &p.signCount, &p.userVerified, &p.transports, &p.aaguid}
}

// scanPasskey reads one row, naming its provider and writing times in UTC.
func scanPasskey(row rowScanner) (passkey, error) {
	var p passkey
	if err := row.Scan(passkeyFields(&p)...); err != nil {
		return p, err
	}
	p.CreatedAt = p.CreatedAt.UTC()
	if p.LastUsedAt != nil {
		t := p.LastUsedAt.UTC()
		p.LastUsedAt = &t
	}
	if name, ok := knownAuthenticators[p.aaguid]; ok {
		p.Device = &name
	}
	return p, nil
}

// webauthnHandle is userID's WebAuthn user handle, made on first use: 32
// random bytes, never the email nor the id.
func (s *store) webauthnHandle(ctx context.Context, userID string) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh)
	var handle []byte
	err := s.db.QueryRowContext(ctx, `UPDATE users SET webauthn_handle = coalesce(webauthn_handle, $2) WHERE id = $1 RETURNING webauthn_handle`,
		userID, fresh).Scan(&handle)
	return handle, classify(err, "User")
}

// webauthnChallenge is a ceremony's pending challenge.
type webauthnChallenge struct {
	hash        []byte
	purpose     string // register | authenticate
	userID      *string
	sessionHash []byte
	network     string
}

// maxLiveChallenges is how many unanswered challenges one client network
// may hold at once: as many sign-ins as production's auth budget (10 a
// minute) lets a network make over a challenge's 5 minutes. It bounds the
// table, and a network behind one address (an office) still signs in.
const maxLiveChallenges = 50

var errTooManyChallenges = errors.New("too many live challenges for this network")

// createChallenge stores c for webauthnChallengeTTL, unless c's network
// already holds maxLiveChallenges live ones (errTooManyChallenges).
func (s *store) createChallenge(ctx context.Context, c webauthnChallenge) error {
	db, err := s.conn(ctx)
	if err != nil {
		return err
	}
	now := s.timestamp()
	res, err := db.ExecContext(ctx, `
		INSERT INTO webauthn_challenges (challenge_hash, purpose, user_id, session_hash, network, created_at, expires_at)
		SELECT $1, $2, $3, $4, $5, $6, $7
		WHERE (SELECT count(*) FROM webauthn_challenges WHERE network = $5 AND expires_at > $6) < $8`,
		c.hash, c.purpose, c.userID, c.sessionHash, c.network, now, now.Add(webauthnChallengeTTL), maxLiveChallenges)
	if err != nil {
		return classify(err, "Challenge")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errTooManyChallenges
	}
	return nil
}

// spendChallenge takes the live challenge of hash and purpose, once:
// errMissing when it is unknown, expired or spent already.
func (s *store) spendChallenge(ctx context.Context, hash []byte, purpose string) (webauthnChallenge, error) {
	c := webauthnChallenge{hash: hash, purpose: purpose}
	err := s.db.QueryRowContext(ctx, `DELETE FROM webauthn_challenges WHERE challenge_hash = $1 AND purpose = $2 AND expires_at > $3
		RETURNING user_id, session_hash, network`, hash, purpose, s.timestamp()).Scan(&c.userID, &c.sessionHash, &c.network)
	return c, classify(err, "Challenge")
}

// deleteStaleChallenges drops expired challenges.
func (s *store) deleteStaleChallenges(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM webauthn_challenges WHERE expires_at <= $1`, s.timestamp())
	return err
}

// createPasskey stores p for p.userID, unless the account holds
// maxPasskeys already (errTooManyPasskeys); a credential id registered
// before is errDuplicate.
func (s *store) createPasskey(ctx context.Context, tx *sql.Tx, p passkey) (passkey, error) {
	row := tx.QueryRowContext(ctx, `
		INSERT INTO passkeys (user_id, credential_id, public_key, algorithm, sign_count, user_verified, backup_eligible, backed_up,
			transports, aaguid, name, created_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
		WHERE (SELECT count(*) FROM passkeys WHERE user_id = $1) < $13
		RETURNING `+passkeyColumns,
		p.userID, p.credentialID, p.publicKey, p.algorithm, p.signCount, p.userVerified, p.BackupEligible, p.BackedUp,
		p.transports, p.aaguid, p.Name, s.timestamp(), maxPasskeys)
	saved, err := scanPasskey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return saved, errTooManyPasskeys
	}
	return saved, classify(err, "Passkey")
}

var errTooManyPasskeys = newError(codeConflict, "This account holds 20 passkeys, the most it may; delete one first.")

// passkeyByCredential is the passkey of a credential id, or errMissing.
func (s *store) passkeyByCredential(ctx context.Context, credentialID []byte) (passkey, error) {
	p, err := scanPasskey(s.db.QueryRowContext(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = $1`, credentialID))
	return p, classify(err, "Passkey")
}

// userWebauthnHandle is userID's handle, nil when none was made.
func (s *store) userWebauthnHandle(ctx context.Context, userID string) ([]byte, error) {
	var handle []byte
	err := s.db.QueryRowContext(ctx, `SELECT webauthn_handle FROM users WHERE id = $1`, userID).Scan(&handle)
	return handle, classify(err, "User")
}

// passkeyUsed records an assertion of p: the new signature counter, when
// it was used, whether it is backed up now. A counter that did not grow
// past the stored one (a zero counter stays zero: the authenticator keeps
// none) matches no row: false, a possible clone or a concurrent use.
func (s *store) passkeyUsed(ctx context.Context, p passkey, signCount uint32, backedUp bool) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE passkeys SET sign_count = $2, last_used_at = $3, backed_up = $4
		WHERE id = $1 AND (sign_count < $2 OR ($2 = 0 AND sign_count = 0))`, p.ID, int64(signCount), s.timestamp(), backedUp)
	if err != nil {
		return false, classify(err, "Passkey")
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// passkeysPageSQL is a page of a user's ($1) passkeys after a position
// ($2, $3): $4 rows, $5 skipped, on the index (user_id, created_at, id).
const passkeysPageSQL = `SELECT ` + passkeyColumns + ` FROM passkeys
	WHERE user_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5`

// passkeysPage is a page of userID's passkeys, newest first, one past the
// limit, and how many the account holds (at most maxPasskeys).
func (s *store) passkeysPage(ctx context.Context, userID string, q pageQuery) ([]passkey, int, error) {
	rows, err := s.db.QueryContext(ctx, passkeysPageSQL, userID, q.after.createdAt, q.after.id, q.limit+1, q.offset)
	list, err := collect(rows, err, func(r rowScanner) (passkey, error) { return scanPasskey(r) })
	if err != nil {
		return nil, 0, classify(err, "Passkeys")
	}
	n, err := s.countPasskeys(ctx, s.db, userID)
	return list, n, err
}

// countPasskeys is how many passkeys userID holds.
func (s *store) countPasskeys(ctx context.Context, q dbtx, userID string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM passkeys WHERE user_id = $1`, userID).Scan(&n)
	return n, classify(err, "Passkeys")
}

// renamePasskey names userID's passkey id; errMissing when it is not theirs.
func (s *store) renamePasskey(ctx context.Context, userID, id, name string) (passkey, error) {
	p, err := scanPasskey(s.db.QueryRowContext(ctx, `UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2 RETURNING `+passkeyColumns,
		id, userID, name))
	return p, classify(err, "Passkey")
}

// deletePasskey deletes userID's passkey id; errMissing when it is not
// theirs.
func (s *store) deletePasskey(ctx context.Context, tx *sql.Tx, userID, id string) (passkey, error) {
	p, err := scanPasskey(tx.QueryRowContext(ctx, `DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING `+passkeyColumns, id, userID))
	return p, classify(err, "Passkey")
}

// passkeyCredentialIDs are userID's credential ids and transports, for a
// registration's excludeCredentials.
func (s *store) passkeyCredentialIDs(ctx context.Context, userID string) ([]passkey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = $1 ORDER BY created_at`, userID)
	list, err := collect(rows, err, func(r rowScanner) (passkey, error) { return scanPasskey(r) })
	return list, classify(err, "Passkeys")
}
