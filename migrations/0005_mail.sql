-- Email verification, password recovery, and the outbox every mail goes
-- through (written in the same transaction as the change that causes it).
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

-- Single-use tokens, stored only as SHA-256. email is the address a
-- verification token vouches for: changed since, the token is void.
CREATE TABLE account_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('reset', 'verify')),
    email      text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose, created_at);

-- kind is a mail's kind, or password_recovery: a request the worker turns
-- into a reset mail (or nothing, for an unknown address) off the request's
-- path, so the answer takes the same time either way.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,
    recipient       text NOT NULL,
    message         bytea,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    sent_at         timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
