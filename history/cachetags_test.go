package history

import "testing"

func TestRunCacheTags(t *testing.T) {
	ok := func(ref string) Cache { return Cache{Ref: ref, After: "sha256:1", Verified: true} }
	gone := func(ref string) Cache { return Cache{Ref: ref} }
	tests := []struct {
		name              string
		steps             [][]Cache // per step, in graph order
		verified, missing int
	}{
		{"no caches", [][]Cache{nil, nil}, 0, 0},
		{"build then verify count once", [][]Cache{{ok("a")}, {ok("b")}, {ok("a")}, {ok("b")}}, 2, 0},
		{"missing in verify only", [][]Cache{{ok("a"), gone("b")}}, 1, 1},
		{"built, then gone at verify", [][]Cache{{ok("a")}, {gone("a")}}, 0, 1},
		{"missing after the build, present at verify", [][]Cache{{gone("a")}, {ok("a")}}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Run{}
			for _, cs := range tt.steps {
				r.Steps = append(r.Steps, Step{Caches: cs})
			}
			v, m := r.CacheTags()
			if v != tt.verified || m != tt.missing {
				t.Errorf("CacheTags() = %d verified, %d missing; want %d, %d", v, m, tt.verified, tt.missing)
			}
		})
	}
}
