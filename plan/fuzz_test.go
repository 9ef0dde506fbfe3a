package plan

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must return a plan or errors, never
// panic, and every error must have a place. Seeds are the shipped and testdata plans.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"../plans/*.yaml", "testdata/bad/*.yaml", "testdata/full/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		plans, err := ParsePlans("fuzz.yaml", data)
		if err != nil {
			if plans != nil {
				t.Fatal("a plan returned with errors")
			}
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 {
					t.Fatalf("error without a place: %v", e)
				}
			}
			return
		}
		for _, p := range plans {
			if _, err := Expand(p); err != nil {
				t.Fatalf("a loaded plan does not expand: %v", err)
			}
		}
	})
}
