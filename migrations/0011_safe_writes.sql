-- Safe writes: a retried create happens once (Idempotency-Key), and a
-- stale edit is refused (ETag / If-Match on a version kept with the row).

-- The answer to a request made with an Idempotency-Key, kept 24 hours:
-- written in the same transaction as the request's effect, so a key with
-- a row here is a request that took effect, once. scope is the caller (an
-- account, or a client network on anonymous routes); fingerprint the
-- SHA-256 of the method, the path and the body. An answer that carried a
-- secret (a TOTP secret, a WebAuthn challenge) is not kept: secret is true
-- and body empty, and a repeat is told to start over.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,
    status       integer NOT NULL,
    location     text NOT NULL DEFAULT '',
    content_type text NOT NULL DEFAULT '',
    body         bytea NOT NULL DEFAULT '',
    secret       boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- A version per item and per user, the ETag's source: it grows by one at
-- every update that changes what the API shows of the row (not xmin, which
-- a restore changes and every update moves, a counter's included).
ALTER TABLE items ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER items_version BEFORE UPDATE ON items FOR EACH ROW
    WHEN ((OLD.title, OLD.description, OLD.owner_id) IS DISTINCT FROM (NEW.title, NEW.description, NEW.owner_id))
    EXECUTE FUNCTION bump_version();
CREATE TRIGGER users_version BEFORE UPDATE ON users FOR EACH ROW
    WHEN ((OLD.email, OLD.full_name, OLD.is_active, OLD.is_superuser, OLD.email_verified, OLD.mfa_enabled, OLD.pending_email)
      IS DISTINCT FROM (NEW.email, NEW.full_name, NEW.is_active, NEW.is_superuser, NEW.email_verified, NEW.mfa_enabled, NEW.pending_email))
    EXECUTE FUNCTION bump_version();
