-- The OpenID Connect provider's state (package idp, PostgresStore). It lives here, not in
-- process memory, so that any replica can serve any step of any flow:
--
--   auth_requests    one row per /authorize request, from creation until its code is
--                    exchanged. After the exchange the row stays as the code's tombstone, so
--                    that a replayed code is recognised, and its grant revoked, until garbage
--                    collection removes the row (code expiry plus a retention period).
--   access_tokens    the record of every issued access token, JWT or opaque, by id: what
--                    revocation and introspection consult.
--   refresh_tokens   refresh tokens, in rotation families (family_id). A token presented after
--                    it was rotated (used_at set) revokes its whole family.
--   sso_sessions     browsers' single sign-on sessions: who signed in, when and how.
--   signing_keys     the keys that sign ID tokens and JWT access tokens, with their rotation
--                    state; signing_key_set holds the one version number that replicas compare
--                    when they replace the key set, so that two rotating at once cannot both win.
--
-- Secrets are stored only as hashes or ciphertext. Authorization codes and refresh tokens
-- appear only as their SHA-256 (base64url, unpadded), signing keys' private halves only
-- encrypted with the key-encryption key from the environment; an access token's value is not
-- stored at all, only its record.
--
-- Times are timestamptz written by the service from its own clock: the store compares them
-- with the "now" its caller passes, never with the database's now(), so that every replica and
-- the in-memory store agree. Lists are text[], never null ('{}' when empty). The ids of
-- grants, families and sessions are '' where a row has none, never null.
--
-- There are no foreign keys between these tables, on purpose: their rows have independent
-- lifetimes. A token outlives the auth request its grant started from, and may outlive the
-- session it was issued under; garbage collection deletes each table on its own terms.

create table auth_requests (
    id                    text primary key,
    client_id             text not null,
    redirect_uri          text not null,
    scopes                text[] not null default '{}',
    state                 text not null default '',
    nonce                 text not null default '',
    response_type         text not null,
    response_mode         text not null default '',
    code_challenge        text not null default '',
    code_challenge_method text not null default '',
    prompt                text[] not null default '{}',
    max_age               interval, -- null when the client sent no max_age
    ui_locales            text[] not null default '{}',
    login_hint            text not null default '',
    hint_subject          text not null default '', -- sub of a verified id_token_hint
    browser_id            text not null default '', -- hash binding the request to a browser
    created_at            timestamptz not null,
    expires_at            timestamptz not null,

    -- Who authenticated, set once when the sign-in completes.
    done                  boolean not null default false,
    subject               text not null default '',
    auth_time             timestamptz, -- null until done
    amr                   text[] not null default '{}',
    session_id            text not null default '',
    dingtalk_corp_id      text not null default '',
    dingtalk_user_id      text not null default '',
    dingtalk_union_id     text not null default '',

    -- The authorization code: its hash, set once; its expiry; when it was exchanged.
    code_hash             text unique, -- also the index that finds the request by code
    code_expires_at       timestamptz,
    consumed_at           timestamptz,

    constraint auth_requests_code_expiry check ((code_hash is null) = (code_expires_at is null)),
    constraint auth_requests_consumed_code check (consumed_at is null or code_hash is not null)
);

-- Garbage collection of requests and code tombstones: a row goes once both the request and
-- its code (if any) expired more than the retention period ago:
--   where greatest(expires_at, code_expires_at) <= $1
-- (greatest ignores nulls: a request without a code goes by expires_at alone).
create index auth_requests_gc_idx on auth_requests (greatest(expires_at, code_expires_at));

create table access_tokens (
    id                text primary key,
    grant_id          text not null, -- the auth request the grant started from
    family_id         text not null default '', -- the refresh family it was issued from
    session_id        text not null default '',
    client_id         text not null,
    subject           text not null,
    scopes            text[] not null default '{}',
    audience          text[] not null default '{}',
    auth_time         timestamptz not null,
    amr               text[] not null default '{}',
    dingtalk_corp_id  text not null default '',
    dingtalk_user_id  text not null default '',
    dingtalk_union_id text not null default '',
    created_at        timestamptz not null,
    expires_at        timestamptz not null,
    revoked_at        timestamptz
);

-- Revocation, which sets revoked_at on every token of a grant (code replay, RevokeGrant), of
-- a refresh family (refresh token replay, revocation of a refresh token) or of a session
-- (logout):
--   where grant_id = $1 / where family_id = $1 / where session_id = $1
create index access_tokens_grant_idx on access_tokens (grant_id);
create index access_tokens_family_idx on access_tokens (family_id);
create index access_tokens_session_idx on access_tokens (session_id);

-- Garbage collection: where expires_at <= $1
create index access_tokens_expires_idx on access_tokens (expires_at);

create table refresh_tokens (
    hash              text primary key, -- SHA-256 of the token value: how a presented token is found
    id                text not null unique, -- public id, for introspection and revocation
    family_id         text not null,
    grant_id          text not null,
    session_id        text not null default '',
    client_id         text not null,
    subject           text not null,
    scopes            text[] not null default '{}',
    audience          text[] not null default '{}',
    auth_time         timestamptz not null,
    amr               text[] not null default '{}',
    dingtalk_corp_id  text not null default '',
    dingtalk_user_id  text not null default '',
    dingtalk_union_id text not null default '',
    created_at        timestamptz not null,
    expires_at        timestamptz not null, -- this token's idle expiry
    family_expires_at timestamptz not null, -- absolute expiry of the whole family
    used_at           timestamptz, -- when it was rotated; presenting it again is a replay
    revoked_at        timestamptz
);

-- Revocation, as for access tokens: where family_id = $1 / grant_id = $1 / session_id = $1
create index refresh_tokens_family_idx on refresh_tokens (family_id);
create index refresh_tokens_grant_idx on refresh_tokens (grant_id);
create index refresh_tokens_session_idx on refresh_tokens (session_id);

-- Garbage collection: a token goes at its idle or its family's absolute expiry, whichever
-- comes first:
--   where least(expires_at, family_expires_at) <= $1
create index refresh_tokens_gc_idx on refresh_tokens (least(expires_at, family_expires_at));

create table sso_sessions (
    id                text primary key,
    subject           text not null,
    auth_time         timestamptz not null,
    amr               text[] not null default '{}',
    dingtalk_corp_id  text not null default '',
    dingtalk_user_id  text not null default '',
    dingtalk_union_id text not null default '',
    created_at        timestamptz not null,
    expires_at        timestamptz not null,
    ended_at          timestamptz -- logout
);

-- Garbage collection: a session goes when it expires, or once it ended more than the
-- retention period ago:
--   where expires_at <= $1 or ended_at <= $2
-- Postgres combines the two indexes (BitmapOr); the second holds ended sessions only.
create index sso_sessions_expires_idx on sso_sessions (expires_at);
create index sso_sessions_ended_idx on sso_sessions (ended_at) where ended_at is not null;

create table signing_keys (
    kid                   text primary key, -- RFC 7638 thumbprint
    ordinal               int not null, -- position in the key set as it was stored
    algorithm             text not null, -- 'RS256', 'ES256'
    state                 text not null, -- 'next', 'current', 'previous'
    encrypted_private_key bytea not null, -- sealed with the key-encryption key
    public_jwk            bytea not null, -- the public key as JSON, bytes exactly as given
    created_at            timestamptz not null,
    activated_at          timestamptz, -- when it became current
    retired_at            timestamptz -- when it became previous
);

-- The version of the key set: replacing the set is
--   update signing_key_set set version = version + 1 where version = $1
-- in the transaction that rewrites signing_keys, so of two replicas rotating from the same
-- version, one wins and the other sees no row and reloads. Exactly one row, ever.
create table signing_key_set (
    singleton boolean primary key default true check (singleton),
    version   bigint not null check (version >= 0)
);

insert into signing_key_set (version) values (0);
