package git

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestPublishRefusesSymlinksOnTheBranch: a branch whose constraints file, or a directory
// above it, is a symlink to somewhere outside the clone must not make refreshd read or write
// there. The publish fails naming the link, the outside file is untouched and the remote
// branch is unchanged.
func TestPublishRefusesSymlinksOnTheBranch(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  string // Options.Dir
		// link makes the symlink in the seed clone, pointing into outside.
		link    func(t *testing.T, seed, outside string)
		wantErr string
	}{
		{
			name: "file",
			link: func(t *testing.T, seed, outside string) {
				if err := os.Symlink(filepath.Join(outside, "victim.txt"), filepath.Join(seed, "constraints-3.11.txt")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "constraints-3.11.txt on the branch is a symlink",
		},
		{
			name: "parent directory",
			dir:  "pinned",
			link: func(t *testing.T, seed, outside string) {
				if err := os.Symlink(outside, filepath.Join(seed, "pinned")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "pinned on the branch is a symlink",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			outside := t.TempDir()
			victim := filepath.Join(outside, "victim.txt")
			const victimData = "not refreshd's to write\n"
			writeFile(t, victim, victimData)
			if tc.dir != "" {
				writeFile(t, filepath.Join(outside, "constraints-3.11.txt"), victimData)
			}
			seed := t.TempDir()
			testkit.Git(t, "", "clone", "--quiet", "-b", branch, f.remote, seed)
			if tc.dir == "" {
				if err := os.Remove(filepath.Join(seed, "constraints-3.11.txt")); err != nil {
					t.Fatal(err)
				}
			}
			tc.link(t, seed, outside)
			testkit.Git(t, seed, "add", "-A")
			testkit.Git(t, seed, "commit", "--quiet", "-m", "symlink")
			testkit.Git(t, seed, "push", "--quiet", "origin", "HEAD:refs/heads/"+branch)
			before := f.head(t)

			f.generate(t, "2024-02-01T00:00:00Z", []string{"apache-beam==2.51.0", "requests==2.32.0"}, []string{"requests==2.32.0"})
			o := f.options()
			o.Dir = tc.dir
			res, err := Publish(testCtx(t), o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Publish error %v, want one containing %q", err, tc.wantErr)
			}
			if res != nil && res.Commit != "" {
				t.Errorf("committed %s through a symlink", res.Commit)
			}
			for _, name := range []string{"victim.txt", "constraints-3.11.txt", "constraints-no-providers-3.11.txt"} {
				data, err := os.ReadFile(filepath.Join(outside, name))
				switch {
				case name == "victim.txt" || (tc.dir != "" && name == "constraints-3.11.txt"):
					if string(data) != victimData {
						t.Errorf("outside file %s now holds %q (err %v)", name, data, err)
					}
				case err == nil:
					t.Errorf("outside file %s was created", name)
				}
			}
			if after := f.head(t); after != before {
				t.Errorf("remote branch moved from %s to %s", before, after)
			}
		})
	}
}
