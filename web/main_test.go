package web

import (
	"testing"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// The console's handler tests run on Postgres as well as on Memory, and so
// do the session store's and the page timings (pages_bench_test.go); pgtest
// stops the server it starts once they are done.
func TestMain(m *testing.M) { pgtest.Main(m) }
