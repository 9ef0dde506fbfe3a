package plan

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestBadPlans loads every testdata/bad/*.yaml and compares all its errors, one
// FILE:LINE:COL: message per line, with the golden .err file beside it.
func TestBadPlans(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("only %d bad plans in testdata/bad; want at least 30", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			p, err := LoadFile(file)
			if err == nil {
				t.Fatalf("LoadFile(%s) = plan %q, nil error; want errors", file, p.Name)
			}
			if p != nil {
				t.Errorf("LoadFile(%s) returned a plan with its errors", file)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			for _, e := range list {
				if e.Pos.File != file || e.Pos.Line == 0 || e.Pos.Col == 0 {
					t.Errorf("error without a full place: %v", e)
				}
			}
			testkit.Golden(t, strings.TrimSuffix(file, ".yaml")+".err", err.Error()+"\n")
		})
	}
}
