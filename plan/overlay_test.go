package plan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// overlayPlan is the plan the overlay tests lay their overlays over: instances, a param,
// list and string vars, a checkout and env.
const overlayPlan = `plan: web
params:
  ref: { default: main, pattern: '[a-z0-9-]+' }
vars:
  platforms: [linux/amd64, linux/arm64]
  cache: ghcr.io/acme/web/cache
instances:
  main: { vars: { branch: constraints-main } }
  v1-test:
    params: { ref: v1-test }
    vars: { branch: constraints-1 }
steps:
  - id: checkout
    checkout: { repo: https://github.com/acme/web.git, ref: "{{ .params.ref }}" }
  - id: build
    needs: [checkout]
    matrix: { platform: "{{ .vars.platforms }}" }
    env: { TARGET: "{{ .vars.cache }}" }
    run: [echo, "{{ .platform }}", "{{ .vars.branch }}"]
`

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOverlayApplied(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"web.yaml": overlayPlan,
		"web.staging.yaml": `overlay: web
vars: { platforms: [linux/amd64] }
params: { ref: { default: staging } }
instances:
  v1-test: { vars: { branch: staging-1 } }
steps:
  checkout: { checkout: { repo: /srv/staging/web.git } }
  build: { env: { TARGET: "localhost:5000/web" } }
`,
	})
	for _, load := range []struct {
		name string
		f    func() ([]*Plan, error)
	}{
		{"dir", func() ([]*Plan, error) { return LoadDir(dir) }},
		{"file", func() ([]*Plan, error) { return LoadPlans(filepath.Join(dir, "web.yaml")) }},
	} {
		t.Run(load.name, func(t *testing.T) {
			plans, err := load.f()
			if err != nil {
				t.Fatal(err)
			}
			if len(plans) != 2 {
				t.Fatalf("%d plans, want 2", len(plans))
			}
			main, rel := plans[0], plans[1]
			if got := main.Vars["platforms"].List; !slices.Equal(got, []string{"linux/amd64"}) {
				t.Errorf("platforms = %v, want the overlay's [linux/amd64]", got)
			}
			if main.Steps[0].Checkout.Repo != "/srv/staging/web.git" {
				t.Errorf("checkout repo = %q, want the overlay's", main.Steps[0].Checkout.Repo)
			}
			if main.Steps[1].Env["TARGET"] != "localhost:5000/web" {
				t.Errorf("env TARGET = %q", main.Steps[1].Env["TARGET"])
			}
			if main.Params[0].Default != "staging" || rel.Params[0].Default != "v1-test" {
				t.Errorf("ref defaults = %q, %q; want the overlay's for main, the instance's own for v1-test", main.Params[0].Default, rel.Params[0].Default)
			}
			if main.Vars["branch"].Scalar != "constraints-main" || rel.Vars["branch"].Scalar != "staging-1" {
				t.Errorf("branch = %q, %q", main.Vars["branch"].Scalar, rel.Vars["branch"].Scalar)
			}
			var paths []string
			for _, o := range rel.Overrides {
				paths = append(paths, o.Path+"="+o.Value+"@"+filepath.Base(o.Pos.File)+":"+o.Pos.String()[len(o.Pos.File)+1:])
			}
			want := []string{
				"vars.platforms=[linux/amd64]@web.staging.yaml:2:9",
				"params.ref.default=staging@web.staging.yaml:3:18",
				"instances.v1-test.vars.branch=staging-1@web.staging.yaml:5:22",
				"steps.checkout.checkout.repo=/srv/staging/web.git@web.staging.yaml:7:27",
				"steps.build.env.TARGET=localhost:5000/web@web.staging.yaml:8:19",
			}
			if !slices.Equal(paths, want) {
				t.Errorf("v1-test overrides:\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
			}
			if len(main.Overrides) != len(want)-1 {
				t.Errorf("main lists %d overrides, want %d (not v1-test's instance var)", len(main.Overrides), len(want)-1)
			}
		})
	}
}

// TestOverlayErrors: every mistake in an overlay is reported at the overlay's file, line and
// column, and the plan does not load (its file is named too, so a daemon keeps the last
// good version).
func TestOverlayErrors(t *testing.T) {
	for _, tc := range []struct {
		name, overlay string
		want          []string // errors, "FILE:LINE:COL: message" with FILE the base name
	}{
		{"unknown var", "overlay: web\nvars: { cach: x }\n",
			[]string{"o.yaml:2:9: overlay sets vars.cach, but the plan (web.yaml) has no var \"cach\"; an overlay replaces values, it does not add them (vars: platforms, cache)"}},
		{"unknown instance var", "overlay: web\ninstances:\n  main: { vars: { brnch: x } }\n",
			[]string{"o.yaml:3:19: overlay sets instances.main.vars.brnch, but the plan (web.yaml) has no var \"brnch\""}},
		{"unknown instance", "overlay: web\ninstances:\n  v2-test: { vars: { branch: x } }\n",
			[]string{"o.yaml:3:3: overlay sets instances.v2-test, but the plan (web.yaml) has no instance \"v2-test\""}},
		{"unknown step", "overlay: web\nsteps:\n  chekout: { checkout: { repo: /x } }\n",
			[]string{"o.yaml:3:3: overlay sets step \"chekout\", but the plan (web.yaml) has no such step; steps: checkout, build"}},
		{"unknown param", "overlay: web\nparams: { rev: { default: x } }\n",
			[]string{"o.yaml:2:11: overlay sets params.rev, but the plan (web.yaml) has no param \"rev\""}},
		{"list var made a string", "overlay: web\nvars: { platforms: linux/amd64 }\n",
			[]string{"o.yaml:2:20: overlay sets vars.platforms to a scalar, but the plan declares it as a list (web.yaml:5:14)"}},
		{"bad value checked as the plan's", "overlay: web\nsteps:\n  build: { timeout: soon }\n",
			[]string{"o.yaml:3:21: timeout"}},
		{"unknown key placed in the overlay", "overlay: web\nsteps:\n  checkout: { checkout: { branch: x } }\n",
			[]string{"o.yaml:3:27: unknown key \"branch\" in checkout"}},
		{"value failing a param pattern", "overlay: web\nparams: { ref: { default: 'Bad Ref' } }\n",
			[]string{"o.yaml:2:27: param ref default \"Bad Ref\": must match"}},
		{"steps as a list", "overlay: web\nsteps: [{ id: checkout }]\n",
			[]string{"o.yaml:2:8: overlay steps must be a mapping from step id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"web.yaml": overlayPlan, "o.yaml": tc.overlay})
			for _, load := range []func() ([]*Plan, error){
				func() ([]*Plan, error) { return LoadDir(dir) },
				func() ([]*Plan, error) { return LoadPlans(filepath.Join(dir, "web.yaml")) },
			} {
				plans, err := load()
				if len(plans) != 0 {
					t.Errorf("loaded %d plans despite the overlay's error", len(plans))
				}
				if err == nil {
					t.Fatal("no error")
				}
				text := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
				for _, w := range tc.want {
					if !strings.Contains(text, w) {
						t.Errorf("errors:\n%s\nwant one starting %q", text, w)
					}
				}
				if !strings.Contains(text, "web.yaml:1:1: the plan does not load with its overlay") {
					t.Errorf("errors:\n%s\nwant the plan's file named too", text)
				}
			}
		})
	}
}

func TestOverlayFiles(t *testing.T) {
	t.Run("two in a directory", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"web.yaml": overlayPlan, "a.yaml": "overlay: web\n", "b.yaml": "overlay: web\n"})
		_, err := LoadDir(dir)
		if err == nil || !strings.Contains(err.Error(), "b.yaml:1:10: a second overlay for plan web") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("for no plan of the directory", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"web.yaml": overlayPlan, "a.yaml": "overlay: wbe\n"})
		plans, err := LoadDir(dir)
		if err == nil || !strings.Contains(err.Error(), "a.yaml:1:10: overlay for plan \"wbe\", but no plan of that name was loaded with it (plans: web)") {
			t.Errorf("err = %v", err)
		}
		if len(plans) != 2 {
			t.Errorf("%d plans; the plan itself is valid", len(plans))
		}
	})
	t.Run("given and in the directory", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"web.yaml": overlayPlan, "a.yaml": "overlay: web\nvars: { cache: a }\n"})
		other := writeDir(t, map[string]string{"b.yaml": "overlay: web\nvars: { cache: b }\n"})
		plans, err := LoadPlansWith(filepath.Join(dir, "web.yaml"), LoadOptions{Overlays: []string{filepath.Join(other, "b.yaml"), filepath.Join(dir, "a.yaml")}})
		if err != nil {
			t.Fatal(err)
		}
		if got := plans[0].Vars["cache"].Scalar; got != "b" || len(plans[0].Overrides) != 2 {
			t.Errorf("cache = %q with %d overrides; want the --overlay's after the directory's, the directory's applied once", got, len(plans[0].Overrides))
		}
	})
	t.Run("given, not an overlay", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"web.yaml": overlayPlan, "x.yaml": "plan: x\n"})
		_, err := LoadPlansWith(filepath.Join(dir, "web.yaml"), LoadOptions{Overlays: []string{filepath.Join(dir, "x.yaml")}})
		if err == nil || !strings.Contains(err.Error(), "x.yaml:1:1: not an overlay") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("given, for another plan", func(t *testing.T) {
		dir := writeDir(t, map[string]string{"web.yaml": overlayPlan})
		other := writeDir(t, map[string]string{"o.yaml": "overlay: api\n"})
		_, err := LoadPlansWith(filepath.Join(dir, "web.yaml"), LoadOptions{Overlays: []string{filepath.Join(other, "o.yaml")}})
		if err == nil || !strings.Contains(err.Error(), "o.yaml:1:10: overlay for plan \"api\", but no plan of that name was loaded") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestVarOverrides(t *testing.T) {
	dir := writeDir(t, map[string]string{"web.yaml": overlayPlan + `  - id: versions
    needs: [checkout]
    run: [echo]
    outputs: { vars: { python: { pattern: '3\.[0-9]+' } } }
`})
	file := filepath.Join(dir, "web.yaml")
	plans, err := LoadPlansWith(file, LoadOptions{Vars: []VarOverride{{"branch", "b"}, {"platforms", "linux/riscv64,linux/s390x"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plans {
		if p.Vars["branch"].Scalar != "b" || !slices.Equal(p.Vars["platforms"].List, []string{"linux/riscv64", "linux/s390x"}) {
			t.Errorf("%s: vars %v", p.Name, p.Vars)
		}
		if len(p.Overrides) != 2 || p.Overrides[0].Path != "vars.branch" || p.Overrides[0].Pos.File != "--var" {
			t.Errorf("%s: overrides %v", p.Name, p.Overrides)
		}
	}
	for _, tc := range []struct {
		v    VarOverride
		want string
	}{
		{VarOverride{"brnch", "x"}, "web.yaml: --var brnch: the plan declares no var brnch (vars: branch, cache, platforms)"},
		{VarOverride{"python", "3.12"}, "web.yaml: --var python: var python is read at run time by step versions; refreshd plan --value python=... shows a dry run with it"},
	} {
		_, err := LoadPlansWith(file, LoadOptions{Vars: []VarOverride{tc.v}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--var %s=%s: err = %v, want %q", tc.v.Name, tc.v.Value, err, tc.want)
		}
	}
	for _, arg := range []string{"novalue", "=x", "-x=y", "a=b\nc"} {
		if _, err := ParseVarArg(arg); err == nil {
			t.Errorf("ParseVarArg(%q) = nil error", arg)
		}
	}
}
