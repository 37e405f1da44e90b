-- Sessions a user can see and end: a public id (never the token or its
-- hash), when it was last used (for the idle timeout, written at most once a
-- minute), and where it came from.
ALTER TABLE sessions ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE sessions ADD CONSTRAINT sessions_id_key UNIQUE (id);
ALTER TABLE sessions ADD COLUMN last_used_at timestamptz;
UPDATE sessions SET last_used_at = created_at;
ALTER TABLE sessions ALTER COLUMN last_used_at SET NOT NULL;
ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN client_ip text NOT NULL DEFAULT '';
CREATE INDEX sessions_user_created_idx ON sessions (user_id, created_at DESC, id DESC);
