-- Not idempotent on purpose: each file creates a table without "if not exists" and counts
-- its own run in runs, so a second run would either fail or show up as a second row.
create table runs (version int not null);
insert into runs values (1);
