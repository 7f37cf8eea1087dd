-- audit_log is the append-only audit trail that every later feature writes to: changes made
-- by administrators, imports, auto-link rules and JIT provisioning, mapping decisions, and
-- sign-in events. Write the audit row in the same transaction as the change it describes, so
-- the trail and the data never disagree.
--
-- Rows are never updated or deleted. The trigger at the end makes the database refuse, so a
-- buggy caller cannot rewrite history; a mistake is corrected by appending another event.
-- (A table owner or superuser can still disable triggers: this guards against bugs, not
-- against the database administrator. Run the service as a role that does not own the table
-- if that matters.)
--
--   actor        who acted: an account id, 'system', 'import', ...
--   action       what happened: 'account.update', 'binding.create', 'signin', ...
--   target_type  the kind of record the event is about: 'account', 'identity', ...
--   target_id    that record's key, as text. Deliberately no foreign key: the trail must
--                outlive the rows it describes.
--   before/after the record as JSON before and after the change; null where there is none
--                (before a creation, after a deletion, events that change no record).
--   at           defaults to now(), the start of the transaction: every row one transaction
--                writes has the same at, and id orders them.

create table audit_log (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    actor       text not null check (actor <> ''),
    action      text not null check (action <> ''),
    target_type text not null check (target_type <> ''),
    target_id   text not null,
    before      jsonb,
    after       jsonb,
    request_id  text,
    client_ip   inet
);

comment on table audit_log is 'Append-only audit trail (dingbridge). UPDATE, DELETE and TRUNCATE are refused by trigger audit_log_append_only.';

-- History of one record, newest first (the "history" panel of an account or identity):
--   where target_type = $1 and target_id = $2 order by at desc
create index audit_log_target_idx on audit_log (target_type, target_id, at desc);

-- What one actor did, newest first ("what did this admin change", "sign-ins of account X"):
--   where actor = $1 order by at desc
create index audit_log_actor_idx on audit_log (actor, at desc);

-- Deliberately no b-tree on (at). The whole trail, newest first, is read through the primary
-- key: order by id desc, paging with id < $last. Rows are only ever appended, so id order is
-- insertion order, and a second b-tree would cost every insert (sign-ins are most of them)
-- for nothing. Queries over a time window (exports, "last 24 hours":
--   where at >= $1 and at < $2
-- ) use this BRIN index instead: rows arrive in time order, so a summary of a few kilobytes
-- per gigabyte of table narrows the scan to the right pages.
create index audit_log_at_brin on audit_log using brin (at);

-- A statement-level trigger fires even when a statement matches no row, so a bad UPDATE or
-- DELETE fails loudly in every test, not only when it happens to hit a row; and TRUNCATE
-- has only statement-level triggers.
create function audit_log_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_log is append-only: % is not allowed', tg_op
        using hint = 'Audit rows are never changed; append a correcting event instead.';
end;
$$;

create trigger audit_log_append_only
    before update or delete or truncate on audit_log
    for each statement execute function audit_log_refuse_change();
