package git

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCollect(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "constraints-x.txt"), "x==1\n")
	work := t.TempDir()
	for _, p := range []string{
		"files/constraints-3.11/constraints-3.11.txt",
		"files/constraints-3.11/constraints-no-providers-3.11.txt",
		"files/constraints-3.11/original-constraints-3.11.txt",
		"files/constraints-3.11/diff-constraints-3.11.md",
		"files/constraints-3.12/constraints-3.12.txt",
		"dup/a/constraints.txt", "dup/b/constraints.txt",
		"inside/target.txt",
	} {
		writeFile(t, filepath.Join(work, p), "p==1\n")
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(work, "links"), 0o755))
	must(os.Symlink(filepath.Join(outside, "constraints-x.txt"), filepath.Join(work, "links/constraints-out.txt")))
	must(os.Symlink("../inside/target.txt", filepath.Join(work, "links/constraints-in.txt")))
	must(os.Symlink(outside, filepath.Join(work, "linkdir")))
	must(os.MkdirAll(filepath.Join(work, "dirs/constraints-dir.txt"), 0o755))

	tests := []struct {
		patterns []string
		want     []string // base names, or
		err      string   // a substring of the error
	}{
		{patterns: []string{"files/constraints-*/constraints*.txt"},
			want: []string{"constraints-3.11.txt", "constraints-no-providers-3.11.txt", "constraints-3.12.txt"}},
		{patterns: []string{"files/*/constraints-3.11.txt", "files/constraints-3.11/constraints-3.11.txt"},
			want: []string{"constraints-3.11.txt"}}, // one file matched twice is one file
		{patterns: []string{"links/constraints-in.txt"}, want: []string{"constraints-in.txt"}},
		{patterns: []string{"/etc/passwd"}, err: "absolute"},
		{patterns: []string{"../*/constraints*.txt"}, err: `contains ".."`},
		{patterns: []string{"files/../../x"}, err: `contains ".."`},
		{patterns: []string{"links/constraints-out.txt"}, err: "outside the workdir"},
		{patterns: []string{"linkdir/*.txt"}, err: "outside the workdir"},
		{patterns: []string{"dup/*/constraints.txt"}, err: "dup/a/constraints.txt and dup/b/constraints.txt have the same name"},
		{patterns: []string{"dirs/*"}, err: "not a regular file"},
		{patterns: []string{"nothing/*.txt"}, err: "no file matches"},
		{patterns: []string{"files/[.txt"}, err: "syntax error in pattern"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.patterns, ","), func(t *testing.T) {
			got, err := collect(work, tc.patterns)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			if strings.Join(names, " ") != strings.Join(tc.want, " ") {
				t.Errorf("collected %v, want %v", names, tc.want)
			}
		})
	}
}
