package mapping_test

import (
	"testing"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/mapping/mappingtest"
)

func TestMemory(t *testing.T) {
	mappingtest.RunStoreTests(t, func(t *testing.T, opts mapping.Options) mapping.Store {
		return mapping.NewMemory(opts)
	})
}
