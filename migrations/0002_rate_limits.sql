-- Rate-limit counters shared by replicas (RATE_LIMIT_STORE=postgres).
-- UNLOGGED: counters are worth less than the write-ahead log they would cost,
-- and a crash that empties them only forgives recent requests.
CREATE UNLOGGED TABLE rate_limits (
    policy  text    NOT NULL,
    key     text    NOT NULL,
    win     bigint  NOT NULL,
    curr    integer NOT NULL,
    prev    integer NOT NULL,
    counted boolean NOT NULL,
    PRIMARY KEY (policy, key)
);
CREATE INDEX rate_limits_win_idx ON rate_limits (policy, win);
