-- DingTalk's per-app per-API call limit, shared by every replica (package dingtalk/sharedlimit, Postgres).
--
-- DingTalk lets an app call each API 20 times a second and refuses the rest (90018). Each
-- replica limiting itself would let N replicas send N times that, so the replicas take their
-- turns here instead. The rule is the one the in-process limiter keeps (dingtalk.LimitWindow):
-- with n calls allowed per window, a call may be sent only once the call n before it has been
-- answered and a window has passed since. That holds per (app, API) by keeping exactly n slots
-- and sending a call only in a slot whose last call was answered a window ago:
--
--   dingtalk_rate_slots  one row per slot: slot 0 … n-1 of one app key and one API (endpoint,
--                        the URL path). Created on a replica's first call to that API; a
--                        replica configured with a lower rate uses only slots below its n.
--
-- free_at is the earliest the slot may be taken again, on the database's clock, so that the
-- replicas' clocks never enter into it. Taking a slot (one statement) marks it in flight
-- (holder, a random id of the call) and sets free_at to the latest the call could still be
-- answered (the in-flight bound) plus a window: a replica that dies with a call in flight
-- loses the slot only until then. The call's answer sets free_at to the answer time plus a
-- window and clears holder, but only while the slot is still that call's (holder matches), so
-- that an answer coming back after the bound cannot undo a later call's turn.
--
-- Rows are few (rate × APIs × apps) and never deleted; each call updates its slot twice.

create table dingtalk_rate_slots (
    app_key  text collate "C" not null,
    endpoint text collate "C" not null,
    slot     integer not null check (slot >= 0),
    free_at  timestamptz not null,
    holder   bigint, -- the call in flight in this slot; null once it was answered
    primary key (app_key, endpoint, slot)
);

-- Taking a turn: the slot of this app and API that has been free longest.
--
--   select slot from dingtalk_rate_slots
--   where app_key = $1 and endpoint = $2 and slot < $3 and free_at <= $now
--   order by free_at limit 1 for update skip locked
--
-- (The primary key serves creating the slots and recording an answer:
--   update dingtalk_rate_slots set free_at = …, holder = null
--   where app_key = $1 and endpoint = $2 and slot = $3 and holder = $4.)
create index dingtalk_rate_slots_free_at on dingtalk_rate_slots (app_key, endpoint, free_at);
