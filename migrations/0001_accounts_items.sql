-- Accounts, their sessions and their items.
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    full_name     text,
    password_hash text NOT NULL,
    is_active     boolean NOT NULL DEFAULT true,
    is_superuser  boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);
-- Emails are stored lower-cased; the index on lower(email) also keeps a row
-- written by hand from sneaking past the check in another case.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_created_at_idx ON users (created_at DESC, id DESC);

-- Only the SHA-256 of a bearer token is stored: a leaked table logs no one in.
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE items (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       text NOT NULL,
    description text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- Lists are newest first, per owner for users and overall for superusers.
CREATE INDEX items_owner_created_idx ON items (owner_id, created_at DESC, id DESC);
CREATE INDEX items_created_idx ON items (created_at DESC, id DESC);
