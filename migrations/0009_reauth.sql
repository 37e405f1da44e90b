-- Re-authentication before what recovery relies on (ASVS 7.5.1), and a
-- ceiling on second-factor guessing (NIST 800-63B 5.2.2).

-- An email change waits for the new address to prove itself: its link's
-- token is an account token of purpose email_change, bound to the new
-- address, and to the session that asked (keep_session, its token's hash),
-- which outlives the change when every other session ends.
ALTER TABLE account_tokens DROP CONSTRAINT account_tokens_purpose_check;
ALTER TABLE account_tokens ADD CONSTRAINT account_tokens_purpose_check CHECK (purpose IN ('reset', 'verify', 'email_change'));
ALTER TABLE account_tokens ADD COLUMN keep_session bytea;
CREATE INDEX account_tokens_email_idx ON account_tokens (email) WHERE purpose = 'email_change' AND used_at IS NULL;

-- What the account shows while a change waits (GET /users/me): the address
-- and when its link expires. Cleared whenever the link is spent or voided.
ALTER TABLE users ADD COLUMN pending_email text;
ALTER TABLE users ADD COLUMN pending_email_expires_at timestamptz;
CREATE INDEX users_pending_email_idx ON users (pending_email) WHERE pending_email IS NOT NULL;

-- Wrong second-factor codes in a row, over every network: at 100 the
-- second step refuses every code until a password reset. mfa_alerted_at is
-- the last "someone knows your password" notice (at most one an hour).
ALTER TABLE users ADD COLUMN mfa_failures integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN mfa_alerted_at timestamptz;
