-- Indexes for the console's account filters (web/accounts.go: ?group= and ?status=), each
-- added because a measurement on 800,000 accounts called for it (web/pages_bench_test.go).
-- Accounts change only when an administrator or an import edits them (a sign-in writes the
-- identity, not the account), so neither index is on the sign-in path.

-- Accounts in a group, in page order:
--   where groups @> array[$1] order by username limit $2
-- Without it, a rare group (20 administrators among 800,000) either scans every account and
-- sorts (72-92 ms) or, when ANALYZE's sample suggests the group is common, walks the username
-- index and filters out nearly every row (1.8 s measured). With it, the planner reads the
-- group's members from the index when they are few (its element statistics say how few) and
-- keeps walking by username when the group is large.
create index accounts_groups_idx on accounts using gin (groups);

-- The planner chooses between those two ways from its estimate of the group's size, taken from
-- the column's element statistics. At the default statistics target ANALYZE samples 30,000
-- rows and keeps only elements seen often enough, so a group of 20 among 800,000 accounts is
-- usually missing and estimated at 0.5% to 5% of the rows: enough to walk usernames, and read
-- all 800,000 (1.8 s). With a target of 1000 it samples 300,000 rows and keeps every element
-- it sees; an element it never saw is then estimated below the rarest it kept, a handful of
-- rows. The larger sample costs an ANALYZE of this table about 300,000 rows instead of 30,000,
-- and accounts change only when administrators edit them.
alter table accounts alter column groups set statistics 1000;

-- Disabled accounts, in page order:
--   where disabled_at is not null order by username limit $1
-- Few accounts are disabled at any time; without it the filter scans every account to find
-- them (63 ms with none disabled).
create index accounts_disabled_idx on accounts (username) where disabled_at is not null;
