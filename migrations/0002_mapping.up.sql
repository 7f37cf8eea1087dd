-- The mapping: enterprise accounts, the DingTalk identities linked to them, and the pending
-- requests of people waiting for an administrator. Package mapping reads and writes these
-- tables; every change it makes also appends to audit_log (0001) in the same transaction.
--
-- Identifiers (ids, usernames, DingTalk ids) use the "C" collation: they are compared and
-- sorted byte by byte, whatever the database's locale, so paging order is the same in
-- Postgres and in the in-memory store, and b-tree comparisons are cheaper.
--
-- Search. The admin page searches, as a case-insensitive substring, across username, display
-- name, email and phone of accounts and DingTalk name, userId, mobile, job number and org
-- email of identities, and must return a first page over a million identities in well under
-- 50 ms. dingbridge writes a lower-cased "search document" per row (fields joined by a
-- newline) and indexes it twice:
--   * pg_trgm (GIN, gin_trgm_ops) answers LIKE '%q%' for queries with at least three ASCII
--     letters or digits in a row: userIds, job numbers, mobile fragments, pinyin, emails.
--     pg_trgm alone cannot serve Chinese: in a database with the C locale (what initdb
--     --no-locale and many images create) it treats every non-ASCII character as a separator
--     and extracts no trigram at all from 张伟, and in any locale a two-character name
--     fragment has no complete trigram, so LIKE '%张伟%' would scan the whole index.
--   * so dingbridge also stores the bigrams of every run of non-ASCII characters (search_cjk,
--     computed in Go, a few elements per row), indexed with GIN array_ops; a query with two
--     or more such characters becomes cjk @> bigrams(q), rechecked with strpos.
-- Queries too short for either index (one Chinese character, "ab") use no search index: the
-- planner walks the primary key in page order and stops at the first page, which is fast
-- precisely because a short query matches many rows. unionIds are random and only ever
-- pasted whole, so they are matched exactly through their unique index, not indexed as text.

create extension if not exists pg_trgm;

create table accounts (
    -- The OIDC sub: random (22 characters of base64url from 16 random bytes) or supplied
    -- by an import that must keep the subs of an earlier provider. Never reused, never
    -- derived from DingTalk ids, never changed.
    id             text collate "C" primary key check (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    username       text collate "C" not null check (username ~ '^[a-z0-9][a-z0-9._@+-]{0,63}$'),
    display_name   text not null default '',
    email          text not null default '',
    email_verified boolean not null default false,
    phone          text not null default '',
    groups         text[] not null default '{}',
    disabled_at    timestamptz, -- null: enabled
    -- Match keys, computed by dingbridge so that Go and SQL agree whatever the locale: the
    -- lower-cased email and the phone's national digits (auto-link and suggestions).
    email_key      text collate "C" not null default '',
    phone_key      text collate "C" not null default '',
    search_doc     text not null default '',   -- see Search above
    search_cjk     text[] not null default '{}',
    created_at     timestamptz not null,
    updated_at     timestamptz not null,
    version        bigint not null default 1 check (version > 0) -- optimistic concurrency
);

-- AccountByUsername, import, JIT username collisions, auto-link on job number (job number =
-- username), and the account search's page order: where username = $1; order by username.
create unique index accounts_username_key on accounts (username);

-- Auto-link on org email and pending-request suggestions: where email_key = $1.
create index accounts_email_key_idx on accounts (email_key) where email_key <> '';

-- Auto-link on mobile and suggestions: where phone_key = $1.
create index accounts_phone_key_idx on accounts (phone_key) where phone_key <> '';

-- Suggestions for a pending request by DingTalk name: where display_name = $1.
create index accounts_display_name_idx on accounts (display_name) where display_name <> '';

-- Account search: where search_doc like '%q%' (queries with an ASCII run of three or more).
create index accounts_search_trgm_idx on accounts using gin (search_doc gin_trgm_ops);

-- Account search: where search_cjk @> $bigrams (queries with two or more Chinese characters).
create index accounts_search_cjk_idx on accounts using gin (search_cjk);

create table dingtalk_identities (
    corp_id        text collate "C" not null check (corp_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    -- userId is unique and immutable inside a corp: the key.
    user_id        text collate "C" not null check (user_id ~ '^[A-Za-z0-9._@-]{1,64}$'),
    -- unionId is only unique per DingTalk developer account (BR-08): it is stored with the
    -- app key it was obtained through, and the resolver compares unionIds only under the
    -- same app key. null when unknown.
    union_id       text collate "C" check (union_id ~ '^[A-Za-z0-9+/=_-]{1,64}$'),
    open_id        text collate "C" check (open_id ~ '^[A-Za-z0-9+/=_-]{1,64}$'),
    app_key        text collate "C" not null default '' check (app_key ~ '^[A-Za-z0-9_-]{0,64}$'),
    -- null: known (a sign-in attempt, a directory sync) but not linked yet. No cascade: an
    -- account that still has identities cannot be deleted.
    account_id     text collate "C" references accounts (id),
    status         text not null default 'active' check (status in ('active', 'disabled')),
    disabled_at    timestamptz,
    -- Who made the row what it is: for a linked identity, who linked it; 'login' for one
    -- recorded by a sign-in attempt and not linked yet.
    source         text not null check (source in ('admin', 'import', 'auto', 'jit', 'sync', 'login')),
    -- Profile snapshot from the corp directory (topapi/v2/user/get), refreshed at sign-in.
    name           text not null default '',
    mobile         text not null default '',
    org_email      text not null default '',
    email          text not null default '', -- DingTalk's personal email: shown, never matched (BR-06)
    job_number     text not null default '',
    title          text not null default '',
    dept_ids       bigint[] not null default '{}',
    active         boolean not null default false,
    -- Search documents (see Search above): this identity's own fields, and a copy of its
    -- account's, rewritten in the same transaction whenever the link or the account changes,
    -- so that one index scan on this table finds identities by their account's fields too.
    search_doc     text not null default '',
    search_cjk     text[] not null default '{}',
    search_account text not null default '',
    account_cjk    text[] not null default '{}',
    last_login_at  timestamptz,
    created_at     timestamptz not null,
    updated_at     timestamptz not null,
    version        bigint not null default 1 check (version > 0),
    primary key (corp_id, user_id),
    check ((status = 'disabled') = (disabled_at is not null)),
    check (union_id is null or app_key <> '')
)
-- Every sign-in rewrites its row (last_login_at, the snapshot). Room left on each page lets
-- that be a HOT update, which touches no index when no indexed value changed; without it a
-- sign-in would add entries to all five indexes, the two GIN indexes included.
with (fillfactor = 80);

-- Resolution by unionId (where union_id = $1 and corp_id = $2) and exact unionId search
-- (where union_id = $1). A unique index does not care about column order, so union_id comes
-- first and serves both.
create unique index dingtalk_identities_union_key on dingtalk_identities (union_id, corp_id) where union_id is not null;

-- The identities of an account (claims, the account page, export, auto-link's "no identity in
-- this corp yet", refusing to delete a linked account, rewriting search_account):
-- where account_id = $1. Also keeps the foreign key check on account deletion cheap.
create index dingtalk_identities_account_idx on dingtalk_identities (account_id) where account_id is not null;

-- Identity search (the admin page): where (search_doc || E'\n' || search_account) like '%q%'.
-- The query must spell the expression exactly so.
create index dingtalk_identities_search_trgm_idx on dingtalk_identities
    using gin ((search_doc || E'\n' || search_account) gin_trgm_ops);

-- Identity search by Chinese fragment: where (search_cjk || account_cjk) @> $bigrams.
create index dingtalk_identities_search_cjk_idx on dingtalk_identities using gin ((search_cjk || account_cjk));

create table pending_requests (
    id                    text collate "C" primary key,
    corp_id               text collate "C" not null,
    user_id               text collate "C" not null,
    status                text not null default 'open' check (status in ('open', 'approved', 'rejected', 'closed')),
    attempts              int not null default 1 check (attempts > 0),
    first_seen_at         timestamptz not null,
    last_seen_at          timestamptz not null,
    -- Accounts an administrator may want to link (same job number, org email, mobile or
    -- name). Hints only: nothing links automatically from here. No foreign key: a suggested
    -- account may be deleted.
    suggested_account_ids text[] not null default '{}',
    -- The decision. approved: linked to account_id; rejected: reason says why; closed: the
    -- identity was linked some other way (admin, import, auto-link) before anyone decided.
    account_id            text collate "C",
    decided_by            text,
    decided_at            timestamptz,
    reason                text not null default '',
    foreign key (corp_id, user_id) references dingtalk_identities (corp_id, user_id) on delete cascade,
    check ((status = 'open') = (decided_at is null))
);

-- One open request per identity: a person who tries again refreshes it (attempts,
-- last_seen_at) instead of queueing another. Also finds it: where corp_id = $1 and
-- user_id = $2 and status = 'open'.
create unique index pending_requests_one_open on pending_requests (corp_id, user_id) where status = 'open';

-- Every request of one identity (its history on the identity page) and the cascade when an
-- identity is deleted: where corp_id = $1 and user_id = $2.
create index pending_requests_identity_idx on pending_requests (corp_id, user_id);

-- The admin's queue, most recent first, paged by (last_seen_at, id):
-- where status = $1 order by last_seen_at desc, id desc.
create index pending_requests_queue_idx on pending_requests (status, last_seen_at desc, id desc);
