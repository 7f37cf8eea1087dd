-- Import jobs of the admin console (package mapping, ImportJob): an uploaded CSV on its way
-- through dry run and apply. They live here, not in a replica's memory, because the console
-- runs on several replicas without sticky sessions: the replica that runs the dry run writes
-- the progress and the report, and any replica shows them or applies the file.
--
--   owner       the account id of the administrator who uploaded the file; every read and
--               update says whose job it is, so no other administrator can see it
--   data        the file as uploaded (at most mapping.MaxImportBytes, 16 MiB)
--   report      the dry run's or the apply's report, as JSON (json, not jsonb: it is only
--               ever written and read whole)
--   digest      of the previewed report, which the apply must repeat
--   done, total the running dry run's or apply's progress, in lines
--   expires_at  after it the job is invisible; creating a job deletes expired ones
--
-- Jobs are working state, not the mapping: not audited, not exported.

create table import_jobs (
    id         text collate "C" primary key,
    owner      text collate "C" not null,
    file_name  text not null default '',
    relink     boolean not null default false,
    state      text not null check (state in ('previewing', 'previewed', 'applying', 'applied', 'failed')),
    done       integer not null default 0,
    total      integer not null default 0,
    data       bytea not null,
    report     json,
    digest     text not null default '',
    error      text not null default '',
    created_at timestamptz not null,
    updated_at timestamptz not null,
    expires_at timestamptz not null
);

create index import_jobs_expires_at on import_jobs (expires_at);
