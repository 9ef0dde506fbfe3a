package plan

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestSchemaMatchesDecoder keeps the JSON Schema in step with the decoder: for every object
// kind the decoder reads (recorded while loading testdata/full, which uses every key), the
// schema's $defs entry has exactly the same properties.
func TestSchemaMatchesDecoder(t *testing.T) {
	l := newLoader()
	l.known = make(map[string][]string)
	files, err := l.read("testdata/full", nil)
	if err != nil {
		t.Fatal(err)
	}
	l.sharedBuilders(files)
	for _, f := range files {
		if f.kind == kindPlan && l.plans(f) == nil {
			t.Fatalf("testdata/full does not load: %v", l.errs)
		}
	}
	var schema struct {
		Defs map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	covered := make(map[string]bool)
	for kind, keys := range l.known {
		def := strings.ReplaceAll(kind, " ", "_")
		covered[def] = true
		d, ok := schema.Defs[def]
		if !ok {
			t.Errorf("schema has no $defs/%s for the decoder's %s", def, kind)
			continue
		}
		got := slices.Sorted(maps.Keys(d.Properties))
		want := slices.Sorted(slices.Values(keys))
		if !slices.Equal(got, want) {
			t.Errorf("$defs/%s properties %q; the decoder accepts %q", def, got, want)
		}
	}
	for def, d := range schema.Defs {
		if len(d.Properties) > 0 && !covered[def] {
			t.Errorf("$defs/%s is an object the decoder never read in testdata/full: add it there", def)
		}
	}
}

// TestSchemaAjv runs a real JSON Schema validator (ajv-cli, installed by
// scripts/install-stack.sh) on every shipped plan (must pass) and on each bad plan marked
// "# schema: reject" (must fail).
func TestSchemaAjv(t *testing.T) {
	ajv := testkit.Need(t, "ajv")[0]
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema.json")
	if err := os.WriteFile(schema, Schema(), 0o644); err != nil {
		t.Fatal(err)
	}
	good, _ := filepath.Glob("../plans/*.yaml")
	full, _ := filepath.Glob("testdata/full/*.yaml")
	good = append(good, full...)
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	var reject []string
	for _, f := range bad {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(data, []byte("# schema: reject\n")) {
			reject = append(reject, f)
		}
	}
	if len(reject) < 20 {
		t.Fatalf("only %d bad plans marked # schema: reject", len(reject))
	}
	for f, v := range ajvVerdicts(t, ajv, schema, good) {
		if v != "valid" {
			t.Errorf("ajv rejects shipped plan %s: %s", f, v)
		}
	}
	for f, v := range ajvVerdicts(t, ajv, schema, reject) {
		if !strings.HasPrefix(v, "invalid") {
			t.Errorf("ajv accepts %s, which the schema should reject", f)
		}
	}
}

// ajvVerdicts runs ajv (draft 2020-12, with ajv-formats for "format": "regex") on each
// YAML file, converted to JSON as an editor's YAML support does, and returns "valid" or
// "invalid" (with ajv's reasons) per file.
func ajvVerdicts(t *testing.T, ajv, schema string, files []string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	kw := filepath.Join(dir, "x-refreshd-check.js")
	if err := os.WriteFile(kw, []byte(ajvKeywordModule), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"validate", "--spec=draft2020", "-c", "ajv-formats", "-c", kw, "--errors=line", "-s", schema}
	names := make(map[string]string)
	verdict := make(map[string]string)
	for _, f := range files {
		var v any
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, &v); err != nil {
			// Not a YAML document an editor can check (a repeated key): invalid for any
			// JSON Schema validator.
			verdict[f] = "invalid (YAML: " + err.Error() + ")"
			continue
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out := filepath.Join(dir, strings.ReplaceAll(strings.TrimPrefix(f, "../"), "/", "_")+".json")
		if err := os.WriteFile(out, js, 0o644); err != nil {
			t.Fatal(err)
		}
		names[out] = f
		args = append(args, "-d", out)
	}
	// ajv exits 1 when a file is invalid; what counts is one verdict line per file. A run
	// that ends short of them (node killed under memory pressure) is retried once, logged.
	for try := 1; ; try++ {
		out, err := exec.Command(ajv, args...).CombinedOutput()
		got := maps.Clone(verdict)
		for _, line := range strings.Split(string(out), "\n") {
			for js, f := range names {
				if rest, ok := strings.CutPrefix(line, js+" "); ok {
					got[f] = rest
				}
			}
		}
		if len(got) == len(files) {
			return got
		}
		if try == 2 {
			t.Fatalf("ajv gave %d verdicts for %d files (%v):\n%s", len(got), len(files), err, out)
		}
		t.Logf("ajv gave %d verdicts for %d files (%v); running it again", len(got), len(files), err)
	}
}
