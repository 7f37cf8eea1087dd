package web

import (
	"testing"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// The page timings (pages_bench_test.go) run on Postgres.
func TestMain(m *testing.M) { pgtest.Main(m) }
