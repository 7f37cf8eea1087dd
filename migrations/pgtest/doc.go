// Package pgtest gives tests a fresh Postgres database each, so that store and migration tests
// run against the real thing, never a mock. With DINGBRIDGE_TEST_DATABASE_URL set it creates
// databases on that server; otherwise it starts one throwaway server per test binary from the
// local initdb and postgres (as the postgres OS user when tests run as root), reachable only
// through a Unix socket in a temporary directory, which Main stops and removes after the tests.
// Where neither is possible, tests fail if CI is set and skip loudly otherwise. It knows how to
// get a migrated database, through package migrations; it must not know any store's tables or
// Go types, nor hold test data.
package pgtest
