-- The admin console's sessions (package web, PostgresSessions; SECURITY.md ADM-04).
--
-- The console's cookie is sealed (gorilla/securecookie), but a sealed cookie cannot be taken
-- back: a copy made before sign-out would keep working, on every replica, until it expired.
-- So each console sign-in also writes a row here, and every console request reads it: a
-- session that was signed out or whose account stopped being an administrator (revoked_at),
-- that nobody used for the idle timeout (last_seen_at) or that is older than the absolute
-- timeout (expires_at) is refused by every replica at once.
--
-- A row per session rather than a session_version per account: signing out on one device
-- must not end the same administrator's session on another, and the idle timeout needs a
-- per-session last use. A new sign-in is a new row with a new id (session fixation).
--
-- The session id is 256 random bits that only the browser's cookie holds; this table keeps
-- its SHA-256, so whoever reads the table (a backup, a read replica) cannot make a cookie.
--
-- last_seen_at moves at most once a minute per session: the console skips the update while
-- the row was touched less than a minute ago, so a busy console does not write on every page
-- view, and the idle timeout may end a session up to a minute early, never late.
--
-- account_id names accounts.id (0002) without a foreign key: the console re-reads the account
-- on every request (a deleted, disabled or demoted account is refused and its sessions
-- revoked), and rows go away once unusable. The console deletes those (expired, idle or
-- revoked) whenever someone signs in: the table grows only by sign-ins, so it stays as small
-- as the number of recent sign-ins, without a background job; several replicas deleting at
-- once is harmless.

create table admin_sessions (
    id_hash      bytea primary key check (octet_length(id_hash) = 32), -- sha256(session id)
    account_id   text collate "C" not null,
    created_at   timestamptz not null,
    last_seen_at timestamptz not null,
    expires_at   timestamptz not null check (expires_at > created_at),
    revoked_at   timestamptz -- sign-out, or the account is no longer an administrator
);

-- Revoking every live session of one account.
create index admin_sessions_account on admin_sessions (account_id) where revoked_at is null;
