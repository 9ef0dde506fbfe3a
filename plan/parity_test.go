package plan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// schemaChecks is the one table of what the loader (refreshd validate) checks and the JSON
// Schema cannot express: relations between values, the text a YAML number was written
// as, and the semantics of a cron spec or a regular expression. The schema marks each on
// the property it concerns with "x-refreshd-check": "ID" (a list when several apply), so
// an editor can show that more is checked than it sees. A plan the loader rejects and the
// schema accepts is explained only when every one of the loader's messages is one of
// these checks (msg); every other disagreement fails TestSchemaParityGenerated.
var schemaChecks = []struct {
	id, what string
	msg      *regexp.Regexp
}{
	{"needs", "needs name steps of the plan, not the step itself, each once, without a cycle; a step using values another step defines at run time (outputs:, .source) needs it",
		regexp.MustCompile(`^step \S+ needs (unknown step|itself|".*" twice)|^needs form a cycle|^step \S+ uses var \S+, which (step \S+ defines at run time|it defines itself)|^skip_if of step \S+ uses values step|^step \S+ names \.source, which checkout step|^checkout step \S+ names \.source`)},
	{"unique", "step ids are unique in a plan, node names in a builder, plan names in a directory; a builder is declared or referenced once, with one definition",
		regexp.MustCompile(`^step id ".*" repeated|^builder ".*" (declared twice|referenced twice|is both declared|is defined differently)|^node name ".*" repeated|^two instances are both named`)},
	{"builder-declared", "a step's builder is declared in the plan or a shared builders file; a buildx_cache step names the step's builder and has a node for each of its platforms",
		regexp.MustCompile(`uses undeclared builder|^builder ".*" is not declared|^step builder ".*" differs from buildx_cache builder|^no node of builder \S+ is pinned to`)},
	{"template", "template names (.vars.NAME, matrix axes, .params, .secrets, .source) are defined where used, and of the right kind (a list var where a list is wanted)",
		regexp.MustCompile(`^template: |^matrix axis \S+ names (unknown var|".*", which is not a list var|var ".*", which is not a list)|^platforms names ".*", which is not a list var|^matrix axis \S+: var ".*" (is an empty list|has no list value)|^platforms: var ".*" is an empty list|name var \S+, which step \S+ defines at run time| \(from var \S+\)$`)},
	{"secret-declared", "a secret that a step, a token: or a template names is declared; a declared secret is given to something; a run step reads only the secrets it names",
		regexp.MustCompile(`^token ".*" is not a secret of the plan|^step \S+ names secret ".*", which the plan does not declare|^secret \S+ is given to nothing|^step \S+ names secret ".*" twice|^step \S+ reads \$\S+, but|^step \S+ sets env \S+ and names the secret`)},
	{"param-default", "a param's default (and an instance's) is one of its values and matches its pattern; an instance sets only declared params",
		regexp.MustCompile(`^(instance \S+ )?param \S+ default ".*": (want one of|must match)|^instance \S+ sets param \S+, which the plan does not declare`)},
	{"param-bytes", "a param value is at most 256 bytes (JSON Schema counts characters)",
		regexp.MustCompile(`^(instance \S+ )?param \S+ (default|value) ".*": longer than 256 bytes`)},
	{"by-text", "values are compared by their text as written (1 and 1.0 differ, true and \"true\" are the same): no repeats in a list",
		regexp.MustCompile(`^param \S+ lists value ".*" twice|^matrix axis \S+ repeats value|^matrix axis \S+: var ".*" repeats value`)},
	{"re2", "a regular expression is Go RE2 syntax (no lookaround or backreference; (?i) and [[:alpha:]] allowed)",
		regexp.MustCompile(`: bad regular expression: `)},
	{"cron", "a schedule's ranges ascend (5-1 is refused), its steps and values are in range, and it fires at least once in five years (not 31 2)",
		regexp.MustCompile(`^bad schedule ".*": .*beyond end of range|^schedule ".*" never fires`)},
	{"paths", "keep paths, files globs, dirs and outputs files stay inside their directory once . and .. are cleaned; a files glob is a valid glob",
		regexp.MustCompile(`^keep ".*" must be a path inside the checkout|^files ".*" must be a glob relative|^files ".*": bad glob|^dir ".*" must be a relative directory|^outputs from ".*": want stdout or a file relative`)},
	{"rendered", "what values render to, for every instance: image references, branch names, paths",
		regexp.MustCompile(`renders to ".*", which | \(rendered from .*\)$|^buildx_cache ref ".*" must be a repository without a tag|^workdir renders to|^skip_if tags ref ".*" names a digest|holds a NUL byte`)},
	{"argv", "a value that reaches a program's argv is safe there, literal or rendered: no leading \"-\" (an option), no control character, git refs as git check-ref-format wants them and no refspec, repositories without a remote helper",
		regexp.MustCompile(`^[a-z_ ]+( \S+)? ".*": (it (is empty|starts with|holds|has|ends with|names git's remote helper)|"@" is not a ref name|a component starts with|its host)|^driver option name ".*": want a name`)},
	{"outputs", "a var defined by outputs is not also a plan var or defined by another step",
		regexp.MustCompile(`^step \S+ defines var \S+ at run time, but vars: also sets it|^var \S+ is defined by step \S+ too`)},
	{"retry-backoff", "retry backoff is not longer than max_backoff",
		regexp.MustCompile(`^retry backoff \S+ is longer than max_backoff`)},
	{"instances", "an instance's vars keep the kind the plan gives them; instances have workdirs of their own",
		regexp.MustCompile(`^instance \S+ sets var \S+ to|^instances \S+ and \S+ share workdir`)},
	{"instances-from", "instances_from makes at least one instance when the plan writes none under instances: (the branches are listed when the plans load)",
		regexp.MustCompile(`^instances_from made no instance`)},
	{"bounds", "a plan expands to a bounded number of instances and dependencies",
		regexp.MustCompile(`^step \S+ makes the plan expand to more than|^step \S+: its \d+ instances each need|^skip_if tags watches more than`)},
}

// paritySeed returns the generator's seed: REFRESHD_PARITY_SEED when set, else a new one
// (printed, so a failure can be run again).
func paritySeed(t *testing.T) uint64 {
	if s := os.Getenv("REFRESHD_PARITY_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("REFRESHD_PARITY_SEED=%q: %v", s, err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// parityCase is a generated plan with the loader's verdict, and where it was written.
type parityCase struct {
	genCase
	yaml, json string // files
	loaderOK   bool
	loaderMsgs []string
}

// generatedCases generates n plans, writes each as YAML and as JSON into dir (unless dir is
// "") and runs the loader on each.
func generatedCases(t *testing.T, seed uint64, n int, dir string) []*parityCase {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	s := loadSchemaModel(t)
	gen := append(corpusCases(t), generate(t, r, s, baseCases(t), n)...)
	cases := make([]*parityCase, len(gen))
	var wg sync.WaitGroup
	work := make(chan int)
	for range 2 {
		wg.Go(func() {
			for i := range work {
				c := &parityCase{genCase: gen[i]}
				data := marshalCase(t, c.genCase)
				c.yaml = filepath.Join(dir, fmt.Sprintf("%05d.yaml", i))
				c.json = filepath.Join(dir, fmt.Sprintf("%05d.json", i))
				c.loaderOK, c.loaderMsgs = loaderVerdict(c.yaml, data)
				v, err := toJSON(c.doc)
				if err != nil {
					t.Errorf("%s: to JSON: %v", c.name, err)
				}
				js, err := json.Marshal(v)
				if err != nil {
					t.Errorf("%s: to JSON: %v", c.name, err)
				}
				if dir == "" {
					cases[i] = c
					continue // the loader only: no files
				}
				if err := os.WriteFile(c.yaml, data, 0o644); err != nil {
					t.Error(err)
				}
				if err := os.WriteFile(c.json, js, 0o644); err != nil {
					t.Error(err)
				}
				cases[i] = c
			}
		})
	}
	for i := range gen {
		work <- i
	}
	close(work)
	wg.Wait()
	return cases
}

// explained says whether the loader's rejection of a plan the schema accepts is one of
// schemaChecks (every message is), and names the checks or the first unexplained message.
func explained(msgs []string) (bool, string) {
	var ids []string
	for _, m := range msgs {
		i := slices.IndexFunc(schemaChecks, func(c struct {
			id, what string
			msg      *regexp.Regexp
		}) bool {
			return c.msg.MatchString(m)
		})
		if i < 0 {
			return false, m
		}
		if !slices.Contains(ids, schemaChecks[i].id) {
			ids = append(ids, schemaChecks[i].id)
		}
	}
	return true, strings.Join(ids, ",")
}

// TestSchemaParityGenerated compares the loader with the JSON Schema on generated plans:
// through ajv (draft 2020-12, ajv-formats) and through yaml-language-server (as an editor
// runs it). It fails on every plan one accepts and the other rejects, except a plan the
// loader rejects for a check of schemaChecks only. With -short it generates fewer plans
// and runs only the loader (no outside program): the generator must still reach every
// property and enum of the schema, and the loader must give every plan a verdict.
//
// REFRESHD_PARITY_SEED=N draws the same plans again; REFRESHD_PARITY_CASES=N sets how
// many (default 10000, 1500 with -short); REFRESHD_PARITY_DIR=DIR keeps their files.
func TestSchemaParityGenerated(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1500
	}
	if s := os.Getenv("REFRESHD_PARITY_CASES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("REFRESHD_PARITY_CASES=%q: %v", s, err)
		}
	}
	seed := paritySeed(t)
	t.Logf("seed %d (REFRESHD_PARITY_SEED=%d reproduces), %d cases", seed, seed, n)
	dir := ""
	if !testing.Short() {
		dir = t.TempDir()
		if keep := os.Getenv("REFRESHD_PARITY_DIR"); keep != "" {
			dir = keep // the cases stay there, to look at
		}
	}
	start := time.Now()
	cases := generatedCases(t, seed, n, dir)
	accepted := 0
	for _, c := range cases {
		if c.loaderOK {
			accepted++
		}
	}
	t.Logf("generated and loaded in %s: the loader accepts %d, rejects %d", time.Since(start).Round(time.Millisecond), accepted, len(cases)-accepted)
	if n >= 1000 {
		checkCoverage(t, cases) // fewer plans may leave a property out by chance
	}
	for _, c := range cases {
		if c.want == "" {
			continue
		}
		why := strings.Join(c.loaderMsgs, "; ")
		switch id, loaderOnly := strings.CutPrefix(c.want, "loader-only ("); {
		case c.want == "ok" && !c.loaderOK:
			t.Errorf("%s: the loader rejects it: %s", c.name, why)
		case c.want != "ok" && c.loaderOK:
			t.Errorf("%s (%s): the loader accepts it", c.name, c.want)
		case loaderOnly:
			if ok, ids := explained(c.loaderMsgs); !ok || ids != strings.TrimSuffix(id, ")") {
				t.Errorf("%s (%s): the loader rejects it for %q: %s", c.name, c.want, ids, why)
			}
		}
	}
	if testing.Short() {
		return
	}
	ajv := testkit.Need(t, "ajv")[0]
	server := testkit.Need(t, "yaml-language-server")[0]
	schema := filepath.Join(dir, "schema.json")
	if err := os.WriteFile(schema, Schema(), 0o644); err != nil {
		t.Fatal(err)
	}
	var ajvV map[string]string
	var lspV map[string][]lspDiagnostic
	var wg sync.WaitGroup
	wg.Go(func() {
		t0 := time.Now()
		ajvV = ajvBatch(t, ajv, schema, dir, cases)
		t.Logf("ajv: %s", time.Since(t0).Round(time.Millisecond))
	})
	wg.Go(func() {
		t0 := time.Now()
		files := make([]string, len(cases))
		for i, c := range cases {
			files[i] = c.yaml
		}
		lspV = yamlLanguageServerVerdicts(t, server, schema, files)
		t.Logf("yaml-language-server: %s", time.Since(t0).Round(time.Millisecond))
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	var unexplained, explainedN int
	report := func(c *parityCase, format string, args ...any) {
		unexplained++
		if unexplained <= 25 {
			data, _ := os.ReadFile(c.yaml)
			t.Errorf("%s (%s): "+format+"\n%s", append([]any{filepath.Base(c.yaml), c.name}, append(args, data)...)...)
		}
	}
	for _, c := range cases {
		ajvOK := ajvV[c.json] == "valid"
		lspErrs := lspV[c.yaml]
		for _, v := range []struct {
			tool string
			ok   bool
			why  string
		}{{"ajv", ajvOK, ajvV[c.json]}, {"yaml-language-server", len(lspErrs) == 0, lspSummary(lspErrs)}} {
			switch {
			case c.want == "bad" && v.ok:
				report(c, "%s accepts it; the corpus says both reject it", v.tool)
			case c.want != "" && c.want != "bad" && !v.ok:
				report(c, "%s rejects it (%s); the corpus says %s", v.tool, v.why, c.want)
			case v.ok == c.loaderOK:
			case v.ok:
				if ok, why := explained(c.loaderMsgs); ok {
					explainedN++
				} else {
					report(c, "%s accepts it, the loader rejects it: %s", v.tool, why)
				}
			default:
				report(c, "%s rejects it (%s), the loader accepts it", v.tool, v.why)
			}
		}
	}
	t.Logf("seed %d: %d cases, %d disagreements explained by schemaChecks, %d unexplained", seed, len(cases), explainedN, unexplained)
	if unexplained > 0 {
		t.Errorf("%d unexplained disagreements; REFRESHD_PARITY_SEED=%d reproduces", unexplained, seed)
	}
}

func lspSummary(ds []lspDiagnostic) string {
	if len(ds) == 0 {
		return "no error"
	}
	return fmt.Sprintf("%d errors, first at %d:%d: %s", len(ds), ds[0].Range.Start.Line, ds[0].Range.Start.Character, ds[0].Message)
}

// checkCoverage fails when the generated plans leave a property or an enum value of the
// schema unused: the generator is drawn from the schema, so each must occur.
func checkCoverage(t *testing.T, cases []*parityCase) {
	t.Helper()
	s := loadSchemaModel(t)
	used := map[string]bool{}
	for _, c := range cases {
		for _, p := range s.places(c.doc.Content[0]) {
			if p.key != "" {
				used["key "+p.key] = true
			}
			if p.node.Kind == 8 { // yaml.ScalarNode
				used["value "+p.node.Value] = true
			}
		}
	}
	for name, d := range s.defs {
		for _, n := range s.flatten([]snode{{d.(map[string]any), name}}) {
			props, _ := n.m["properties"].(map[string]any)
			for k := range props {
				if !used["key "+k] {
					t.Errorf("no generated plan has the key %s of $defs/%s", k, name)
				}
			}
			enum, _ := n.m["enum"].([]any)
			if name == "timezone" {
				continue // hundreds of zones; the generator draws some
			}
			for _, e := range enum {
				if s, ok := e.(string); ok && !used["value "+s] {
					t.Errorf("no generated plan has the value %q of $defs/%s", s, name)
				}
			}
		}
	}
}

// ajvKeywordModule declares x-refreshd-check to ajv (loaded with -c, like ajv-formats):
// its strict mode refuses a keyword it does not know.
const ajvKeywordModule = `module.exports = (ajv) => ajv.addKeyword({keyword: "x-refreshd-check", schemaType: ["string", "array"]})` + "\n"

// ajvBatch validates every case's JSON with one ajv process per few thousand files and
// returns ajv's verdict per JSON file: "valid" or "invalid ...".
func ajvBatch(t *testing.T, ajv, schema, dir string, cases []*parityCase) map[string]string {
	t.Helper()
	kw := filepath.Join(dir, "x-refreshd-check.js")
	if err := os.WriteFile(kw, []byte(ajvKeywordModule), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, c := range cases {
		files = append(files, c.json)
	}
	return ajvVerdictsOf(t, ajv, schema, kw, files)
}

// ajvVerdictsOf runs ajv on JSON files, in batches, and returns "valid" or "invalid ..."
// per file.
func ajvVerdictsOf(t *testing.T, ajv, schema, kw string, files []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	const batch = 2500
	for i := 0; i < len(files); i += batch {
		chunk := files[i:min(i+batch, len(files))]
		args := []string{"validate", "--spec=draft2020", "-c", "ajv-formats", "-c", kw, "--errors=line", "-s", schema}
		for _, f := range chunk {
			args = append(args, "-d", f)
		}
		// ajv ends with process.exit, which cuts short what node still had to write to a
		// pipe: its output goes to files, which node writes synchronously.
		outF, err := os.CreateTemp(t.TempDir(), "ajv-out")
		if err != nil {
			t.Fatal(err)
		}
		errF, err := os.CreateTemp(t.TempDir(), "ajv-err")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ajv, args...)
		cmd.Stdout, cmd.Stderr = outF, errF
		err = cmd.Run() // exit status 1 when a file is invalid
		outF.Close()
		errF.Close()
		out, _ := os.ReadFile(outF.Name())
		stderrB, _ := os.ReadFile(errF.Name())
		stderr := string(stderrB)
		want := map[string]bool{}
		for _, f := range chunk {
			want[f] = true
		}
		n := 0
		// ajv prints "FILE valid" on stdout, "FILE invalid" and the reasons on stderr.
		for _, line := range strings.Split(string(out)+"\n"+stderr, "\n") {
			name, rest, ok := strings.Cut(line, " ")
			if ok && want[name] {
				got[name] = rest
				n++
			}
		}
		if n != len(chunk) {
			missing := ""
			for _, f := range chunk {
				if _, ok := got[f]; !ok {
					missing = f
					break
				}
			}
			e := stderr
			t.Fatalf("ajv gave %d verdicts for %d files (%v), none for %s; its output ends:\n%s", n, len(chunk), err, missing, e[max(0, len(e)-3000):])
		}
	}
	return got
}

// TestSchemaChecksMarked keeps schemaChecks and the schema's x-refreshd-check marks in
// step: every check is marked on at least one property, every mark names a check.
func TestSchemaChecksMarked(t *testing.T) {
	var root any
	if err := json.Unmarshal(Schema(), &root); err != nil {
		t.Fatal(err)
	}
	marked := map[string]int{}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "x-refreshd-check" {
					ids, ok := c.([]any)
					if !ok {
						ids = []any{c}
					}
					for _, id := range ids {
						s, _ := id.(string)
						marked[s]++
						if !slices.ContainsFunc(schemaChecks, func(c struct {
							id, what string
							msg      *regexp.Regexp
						}) bool {
							return c.id == s
						}) {
							t.Errorf("%s: x-refreshd-check %q is not in schemaChecks", path, s)
						}
					}
					continue
				}
				walk(c, path+"/"+k)
			}
		case []any:
			for i, c := range x {
				walk(c, fmt.Sprintf("%s/%d", path, i))
			}
		}
	}
	walk(root, "#")
	for _, c := range schemaChecks {
		if marked[c.id] == 0 {
			t.Errorf("schemaChecks %q (%s) is marked on no property of the schema", c.id, c.what)
		}
	}
}
