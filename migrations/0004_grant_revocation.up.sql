-- Grant revocation by code replay (package idp, PostgresStore; SECURITY.md BR-04).
--
-- When an authorization code is presented a second time, every token issued from it must be
-- revoked (RFC 6749 §4.1.2). Revoking the tokens that exist at the moment of the replay is not
-- enough: the exchange that won the code mints its tokens after consuming it, so a racing
-- replay can come first. The replay therefore also marks the grant revoked on the auth
-- request row, which stays as the code's tombstone, and token creation refuses a grant so
-- marked:
--
--   replay          update auth_requests set grant_revoked_at = coalesce(grant_revoked_at, $2)
--                   where code_hash = $1 and consumed_at is not null
--                   then revoke the grant's refresh and access tokens, in the same transaction
--   token creation  select grant_revoked_at is not null from auth_requests where id = $1
--                   for share
--                   then insert the token, in the same transaction, unless revoked
--
-- The row lock orders the two: the replay's update (FOR NO KEY UPDATE) waits for every
-- creation holding the row FOR SHARE to commit, and a creation waits for a replay holding the
-- row to commit and then reads the mark. (FOR KEY SHARE would not do: it does not conflict
-- with an update of a non-key column.)
--
-- A grant is the auth request it started from: access_tokens.grant_id and
-- refresh_tokens.grant_id name auth_requests.id (no foreign key, as in 0003). Once garbage
-- collection removes the tombstone, the code can no longer be replayed either.

alter table auth_requests
    add column grant_revoked_at timestamptz, -- when a replay of the code revoked the grant
    add constraint auth_requests_grant_revoked_replayed
        check (grant_revoked_at is null or consumed_at is not null);
