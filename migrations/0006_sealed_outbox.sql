-- Mail that cannot be turned against its owner. Queued mails move to a new
-- table whose bodies are sealed with a key derived from SECRET_KEY
-- (AES-256-GCM) and cleared once sent or given up; a failed_at marks a mail
-- that will not be retried.
--
-- A new table, not new columns: during a rolling update the previous
-- release's workers keep claiming rows of "outbox", and would send a sealed
-- body as it is. They drain their own rows there; the new workers adopt any
-- left unsent (outbox.go). A later release drops "outbox".
CREATE TABLE mail_outbox (
    id              bigserial PRIMARY KEY,
    -- a mail's kind, or a request the worker turns into a mail (or into
    -- nothing) off the request's path: password_recovery, verification_resend
    kind            text NOT NULL,
    recipient       text NOT NULL,
    body            bytea,
    message_id      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    sent_at         timestamptz,
    failed_at       timestamptz
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;
-- The caps count what one address was sent in the last hour.
CREATE INDEX mail_outbox_recipient_idx ON mail_outbox (recipient, created_at);
CREATE INDEX mail_outbox_finished_idx ON mail_outbox ((coalesce(sent_at, failed_at))) WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;

-- Sent mails of the old table still hold their links: nothing needs them.
DELETE FROM outbox WHERE sent_at IS NOT NULL;
