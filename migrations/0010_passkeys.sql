-- Passkeys (WebAuthn Level 3): sign-in with no password, and a second
-- factor in one gesture.

-- The account's WebAuthn user handle: 32 random bytes, made when its first
-- passkey is registered; never the email nor the id (a passkey's userHandle
-- finds the account by it).
ALTER TABLE users ADD COLUMN webauthn_handle bytea UNIQUE;

-- A registered passkey: what verifying its assertions needs (the public key
-- as DER SubjectPublicKeyInfo, its COSE algorithm, the last signature
-- counter) and what its owner sees. Never a private key: the authenticator
-- keeps it.
CREATE TABLE passkeys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   bytea NOT NULL UNIQUE,
    public_key      bytea NOT NULL,
    algorithm       integer NOT NULL CHECK (algorithm IN (-7, -8, -257)),
    sign_count      bigint NOT NULL DEFAULT 0,
    user_verified   boolean NOT NULL,
    backup_eligible boolean NOT NULL,
    backed_up       boolean NOT NULL,
    transports      text NOT NULL DEFAULT '',  -- comma-separated (usb, nfc, ble, hybrid, internal)
    aaguid          uuid NOT NULL,
    name            text NOT NULL,
    created_at      timestamptz NOT NULL,
    last_used_at    timestamptz
);
CREATE INDEX passkeys_user_created_idx ON passkeys (user_id, created_at DESC, id DESC);

-- A WebAuthn ceremony's challenge, single use, 5 minutes: a registration's
-- is bound to the account and the session that asked; a sign-in's to the
-- client network that asked (which has a cap of live ones). Stored as
-- SHA-256.
CREATE TABLE webauthn_challenges (
    challenge_hash bytea PRIMARY KEY,
    purpose        text NOT NULL CHECK (purpose IN ('register', 'authenticate')),
    user_id        uuid REFERENCES users (id) ON DELETE CASCADE,
    session_hash   bytea,
    network        text NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX webauthn_challenges_network_idx ON webauthn_challenges (network, expires_at);
CREATE INDEX webauthn_challenges_expires_idx ON webauthn_challenges (expires_at);

-- How a session was made: a password (and perhaps a code), or a passkey.
ALTER TABLE sessions ADD COLUMN method text NOT NULL DEFAULT 'password' CHECK (method IN ('password', 'passkey', 'recovery'));
