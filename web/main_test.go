package web

import (
	"testing"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// TestMain stops the throwaway Postgres that the session store tests start.
func TestMain(m *testing.M) { pgtest.Main(m) }
