// Package migrations holds dingbridge's database schema and the runner that applies it: numbered
// plain-SQL files (0001_audit_log.up.sql, …) embedded in the binary, applied in order, each in
// its own transaction, recorded in schema_migrations, under an advisory lock so that replicas
// starting together apply each file exactly once. Released files are never edited; a change is a
// new file. The package knows tables, not programs: it must not know the Go types of any store
// (mapping, idp, web), which read and write these tables through their own SQL.
package migrations
