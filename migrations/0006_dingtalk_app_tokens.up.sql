-- The shared DingTalk app access token cache (package idp, PostgresStore; SECURITY.md BR-13).
--
--   dingtalk_app_tokens  one row per DingTalk app (app_key, its Client ID): the app access token
--                        the last replica fetched, so that the other replicas use it instead of
--                        each calling DingTalk's rate-limited token endpoint.
--
-- The token is a secret: it lets anyone call DingTalk's APIs as the app. It is stored only
-- encrypted (AES-256-GCM under a key derived from the key-encryption key in the environment,
-- with the app key as associated data, so that a ciphertext cannot be moved to another app's
-- row); ciphertext is nonce || sealed token. The database never sees the token itself.
--
-- expires_at is when replicas stop using the token (DingTalk's expiry minus the refresh margin),
-- written by the replica that fetched it from its own clock. A write replaces the row only when
-- its expires_at is later than the stored one:
--
--   insert into dingtalk_app_tokens (app_key, ciphertext, expires_at, updated_at)
--   values ($1, $2, $3, now())
--   on conflict (app_key) do update set ciphertext = excluded.ciphertext, ...
--   where dingtalk_app_tokens.expires_at < excluded.expires_at
--
-- so that a slow replica cannot put back an older token that DingTalk has already replaced.
-- updated_at is the database's clock at the last replacement, for operators; nothing compares
-- it. Garbage collection deletes rows past expires_at.

create table dingtalk_app_tokens (
    app_key    text primary key,
    ciphertext bytea not null,
    expires_at timestamptz not null,
    updated_at timestamptz not null default now()
);

create index dingtalk_app_tokens_expires_at on dingtalk_app_tokens (expires_at);
