package plan

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const derivedPlan = `plan: af
workdir: "/srv/af/{{ .instance }}"
params:
  ref: { default: main, pattern: 'main|v[0-9]+-[0-9]+-test' }
instances:
  main: {}
instances_from:
  repo: https://example.com/af.git
  branches: 'v[0-9]+-[0-9]+-test'
  newest: 2
  instance:
    schedule: "0 5 * * *"
    params: { ref: "{{ .branch }}" }
steps:
  - { id: build, run: [build, "{{ .params.ref }}", "{{ .instance }}"] }
`

// TestInstancesFrom: the newest matching branches of the remote, by their numbers, become
// instances (v3-10-test is newer than v3-9-test); a failed listing keeps the last known
// branches with a warning, or derives none; a listing matching nothing, or a name also
// written under instances:, is said.
func TestInstancesFrom(t *testing.T) {
	listedAt := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	branches := []string{"main", "v2-11-test", "v3-9-test", "v3-10-test", "v3-10-stable", "feature/x", "v3-1-test", "-v9-9-test"}
	for _, tc := range []struct {
		name      string
		text      string
		listing   *BranchListing // nil: no lister
		instances []string
		warning   string
		err       string
	}{
		{name: "newest two", text: derivedPlan, listing: &BranchListing{Names: branches, ListedAt: listedAt},
			instances: []string{"af/main", "af/v3-10-test", "af/v3-9-test"}},
		{name: "listing failed, last known kept", text: derivedPlan, listing: &BranchListing{Names: []string{"v3-3-test"}, ListedAt: listedAt, Err: errors.New("exit status 128")},
			instances: []string{"af/main", "af/v3-3-test"}, warning: "listing the branches of https://example.com/af.git failed, keeping those listed at 2026-12-07T03:00:00Z: exit status 128"},
		{name: "listing failed, none known", text: derivedPlan, listing: &BranchListing{Err: errors.New("timeout")},
			instances: []string{"af/main"}, warning: "failed and none were listed before: timeout"},
		{name: "no lister", text: derivedPlan, instances: []string{"af/main"}, warning: "were not listed (--offline)"},
		{name: "nothing matches", text: derivedPlan, listing: &BranchListing{Names: []string{"main"}}, instances: []string{"af/main"}, warning: "no branch of https://example.com/af.git matches"},
		{name: "only derived, none listed", text: strings.Replace(derivedPlan, "instances:\n  main: {}\n", "", 1), listing: &BranchListing{Err: errors.New("timeout")},
			err: "p.yaml:6:3: instances_from made no instance and the plan declares none"},
		{name: "a branch written under instances keeps its entry", text: strings.Replace(derivedPlan, "main: {}", "v3-10-test: { schedule: \"0 5 * * *\", params: { ref: v3-10-test } }", 1), listing: &BranchListing{Names: branches},
			instances: []string{"af/v3-10-test", "af/v3-9-test"}},
		{name: "the template is checked as an instance", text: strings.Replace(derivedPlan, `ref: "{{ .branch }}"`, `ref: "x-{{ .branch }}"`, 1), listing: &BranchListing{Names: branches},
			err: `param ref default "x-v3-10-test": must match`},
		{name: "newest bounded", text: strings.Replace(derivedPlan, "newest: 2", "newest: 50", 1), listing: &BranchListing{Names: branches}, err: "instances_from newest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"p.yaml": tc.text})
			var opts LoadOptions
			var asked []string
			if tc.listing != nil {
				opts.Branches = func(repo string) BranchListing { asked = append(asked, repo); return *tc.listing }
			}
			plans, err := LoadPlansWith(filepath.Join(dir, "p.yaml"), opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), dir+"/", ""), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range plans {
				names = append(names, p.Name)
			}
			if !slices.Equal(names, tc.instances) {
				t.Errorf("instances %v, want %v", names, tc.instances)
			}
			if tc.listing != nil && (len(asked) != 1 || asked[0] != "https://example.com/af.git") {
				t.Errorf("listed %v, want the repo once for the file", asked)
			}
			for _, p := range plans {
				d := p.Derived
				if d == nil || !strings.Contains(d.Warning, tc.warning) || (tc.warning == "") != (d.Warning == "") {
					t.Errorf("%s: derived %+v, want warning %q", p.Name, d, tc.warning)
				}
				if tc.warning != "" && (len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0].Msg, tc.warning)) {
					t.Errorf("%s: warnings %v", p.Name, p.Warnings)
				}
				if p.Instance != "main" && (p.Schedule != "0 5 * * *" || p.Params[0].Default != p.Instance) {
					t.Errorf("%s: schedule %q, ref default %q; want the instance template's with its branch", p.Name, p.Schedule, p.Params[0].Default)
				}
			}
		})
	}
}

func TestNewerFirst(t *testing.T) {
	got := []string{"v3-1-test", "v10-0-test", "v3-10-test", "v3-9-test", "v2-11-test", "v3-10"}
	slices.SortFunc(got, newerFirst)
	want := []string{"v10-0-test", "v3-10", "v3-10-test", "v3-9-test", "v3-1-test", "v2-11-test"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
