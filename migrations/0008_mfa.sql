-- A second factor (ASVS 6.3.3): TOTP with recovery codes, and the MFA step
-- of a login.
ALTER TABLE users ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false;
-- Sessions made through a second factor say so.
ALTER TABLE sessions ADD COLUMN mfa boolean NOT NULL DEFAULT false;

-- One authenticator per account. The secret is sealed with a key derived
-- from SECRET_KEY (AES-256-GCM); confirmed_at is NULL while the enrolment
-- is pending; last_step is the last time step accepted, so a code is
-- accepted once (replay).
CREATE TABLE mfa_totp (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint NOT NULL DEFAULT 0
);

-- Single-use recovery codes of 120 random bits, stored only as SHA-256
-- (past 112 bits a fast hash is enough, ASVS 6.5.2).
CREATE TABLE mfa_recovery_codes (
    code_hash  bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX mfa_recovery_codes_user_idx ON mfa_recovery_codes (user_id);

-- The pending second step of a login: the right password was given; the
-- mfa_token (stored as SHA-256) completes it, once, within 5 minutes, from
-- the same client network.
CREATE TABLE mfa_challenges (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    network    text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);
