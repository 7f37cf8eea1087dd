package mapping_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/mapping/mappingtest"
)

// TestImport5000 imports a file of 5,000 lines (3,000 new people, 1,500 changed, 500
// unchanged) into a store holding 2,000 linked people, as a dry run and then an apply, and
// logs how long each took (run with -v for the figures; nothing asserts a time).
func TestImport5000(t *testing.T) {
	stores := map[string]mappingtest.NewStore{
		"Postgres": mappingtest.NewPostgres,
		"Memory":   func(t *testing.T, opts mapping.Options) mapping.Store { return mapping.NewMemory(opts) },
	}
	for _, name := range []string{"Postgres", "Memory"} {
		t.Run(name, func(t *testing.T) {
			s := stores[name](t, mapping.Options{})
			m := mapping.Meta{Actor: "import-test"}
			const header = "corp_id,user_id,username,display_name,email\n"
			var seed, file strings.Builder
			seed.WriteString(header)
			for i := range 2000 {
				fmt.Fprintf(&seed, "dingcorp1,u%05d,user%05d,User %d,user%05d@corp.example.com\n", i, i, i, i)
			}
			r, err := s.Import(t.Context(), m, strings.NewReader(seed.String()), mapping.ImportOptions{Apply: true})
			if err != nil || !r.Applied {
				t.Fatalf("seed: %v, applied %v", err, r.Applied)
			}
			file.WriteString(header)
			for i := range 5000 {
				name := fmt.Sprintf("User %d", i)
				if i < 1500 {
					name = fmt.Sprintf("用户 %d", i) // changed
				}
				fmt.Fprintf(&file, "dingcorp1,u%05d,user%05d,%s,user%05d@corp.example.com\n", i, i, name, i)
			}
			var progress int
			opts := mapping.ImportOptions{Progress: func(done, total int) { progress = done }}
			start := time.Now()
			dry, err := s.Import(t.Context(), m, strings.NewReader(file.String()), opts)
			dryTime := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			creates, updates, noops := dry.Count(mapping.OutcomeCreate), dry.Count(mapping.OutcomeUpdate), dry.Count(mapping.OutcomeNoop)
			if creates != 3000 || updates != 1500 || noops != 500 || progress != 5000 {
				t.Errorf("dry run: %d creates, %d updates, %d no-ops, progress %d; want 3000, 1500, 500, 5000", creates, updates, noops, progress)
			}
			opts.Apply, opts.Expect = true, dry.Digest()
			start = time.Now()
			applied, err := s.Import(t.Context(), m, strings.NewReader(file.String()), opts)
			applyTime := time.Since(start)
			if err != nil || !applied.Applied {
				t.Fatalf("apply: %v, applied %v, changed %v", err, applied.Applied, applied.Changed)
			}
			t.Logf("%s: 5,000-line dry run %v, apply %v (store holding 2,000 people)", name, dryTime.Round(time.Millisecond), applyTime.Round(time.Millisecond))
		})
	}
}
