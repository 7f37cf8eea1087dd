package mapping_test

import (
	"testing"

	"github.com/dingbridge/dingbridge/mapping/mappingtest"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPostgres(t *testing.T) {
	mappingtest.RunStoreTests(t, mappingtest.NewPostgres)
}
