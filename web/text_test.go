package web

import "testing"

// TestTexts checks every text exists in both languages, is not empty, and is
// defined by exactly one part.
func TestTexts(t *testing.T) {
	seen := map[string]int{}
	for i, p := range textParts {
		for k, v := range p.zh {
			if j, dup := seen[k]; dup {
				t.Errorf("text %q defined by parts %d and %d", k, j, i)
			}
			seen[k] = i
			if v == "" {
				t.Errorf("text %q is empty in Chinese", k)
			}
			if p.en[k] == "" {
				t.Errorf("text %q has no English", k)
			}
		}
		for k := range p.en {
			if _, ok := p.zh[k]; !ok {
				t.Errorf("text %q has no Chinese", k)
			}
		}
	}
	if len(textZH) != len(seen) || len(textEN) != len(seen) {
		t.Errorf("merged tables have %d/%d keys, parts define %d", len(textZH), len(textEN), len(seen))
	}
}
