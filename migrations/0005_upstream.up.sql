-- Upstream (DingTalk) transactions and directory-profile fetch times (package idp,
-- PostgresStore; SECURITY.md BR-01, BR-03, BR-05, BR-10, BR-15).
--
--   upstream_transactions  one row per round trip to DingTalk for an authorization request:
--                          the SHA-256 of the random state sent along (never the state itself),
--                          the auth request, the browser binding (hash of the cookie's browser
--                          id), the login mode whose callback path must bring it back, and the
--                          corp. A callback consumes its row once, atomically:
--                            update upstream_transactions set used_at = $2
--                            where state_hash = $1 and used_at is null and expires_at > $2
--                            returning ...
--                          Garbage collection deletes rows past expires_at.
--   dingtalk_profile_refreshes
--                          when the login last fetched a person's directory profile
--                          (topapi/v2/user/get), so that a known identity with a fresh snapshot
--                          signs in without directory calls.
--
-- No foreign keys, as in 0003: rows have independent lifetimes.

create table upstream_transactions (
    state_hash      text primary key,
    auth_request_id text not null,
    browser_id      text not null,
    mode            text not null check (mode in ('web', 'qr', 'sns')),
    corp_id         text not null,
    created_at      timestamptz not null,
    expires_at      timestamptz not null,
    used_at         timestamptz
);

create index upstream_transactions_expires_at on upstream_transactions (expires_at);

create table dingtalk_profile_refreshes (
    corp_id      text not null,
    user_id      text not null,
    refreshed_at timestamptz not null,
    primary key (corp_id, user_id)
);
