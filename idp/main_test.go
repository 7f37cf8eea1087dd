package idp

import (
	"testing"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// TestMain lets pgtest stop the Postgres server it starts for the store tests.
func TestMain(m *testing.M) { pgtest.Main(m) }
