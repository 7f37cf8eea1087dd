-- Indexes for the admin console's audit log and identity filter (web/audit.go,
-- web/bindings.go, mapping.Stats), each added because a measurement on a million identities
-- and 200,000 audit events called for it (web/pages_bench_test.go).

-- The audit log filtered by action, newest first, paged by id:
--   where action collate "C" = $1 [and id < $2] order by id desc limit $3
-- and by a family of actions (a byte range, whatever the database's locale):
--   where action collate "C" >= 'account.' and action collate "C" < 'account/' order by id desc
-- Without it a rare action (account.delete) walks the whole trail backwards: 95 ms at 200,000
-- events, growing with the trail. It costs one b-tree entry per audit row; sign-ins that
-- succeed write no audit row, so the hot path does not pay for it.
create index audit_log_action_idx on audit_log ((action collate "C"), id);

-- Identities not linked yet, in page order: the identities page's "not linked" filter
--   where account_id is null [and (corp_id, user_id) > ($1, $2)] order by corp_id, user_id
-- and the overview's count of them (select count(*) … where account_id is null), read from
-- this index alone instead of a scan of every identity when few are unlinked. Sign-ins change
-- none of its columns, so their updates stay HOT (see fillfactor in 0002); only linking and
-- unlinking touch it.
create index dingtalk_identities_unlinked_idx on dingtalk_identities (corp_id, user_id) where account_id is null;

-- Deliberately no index on last_login_at (the overview's "signed in today"): every sign-in
-- sets it, and an index on it makes every sign-in's update non-HOT, writing new entries into
-- all of this table's indexes, both GIN search indexes included (measured: 100% of sign-in
-- updates HOT without it, 0% with it). mapping.Stats counts sign-ins exactly while the table
-- is small and samples it (TABLESAMPLE, about 100,000 rows read) above, shown as "≈".
