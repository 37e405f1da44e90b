-- Networks (IPv4 address, IPv6 /64) an account signed in from successfully:
-- when the account's failure budget is spent by guesses from elsewhere, these
-- still get through, so nobody can lock the owner out. Kept 30 days after the
-- last success; they go with the account.
CREATE TABLE login_networks (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    network         text NOT NULL,
    last_success_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, network)
);
CREATE INDEX login_networks_last_success_idx ON login_networks (last_success_at);
