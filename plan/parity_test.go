package plan

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// parityCase is one plan of testdata/parity, whose first line says what both checkers must
// conclude: "# parity: ok", "# parity: bad", or "# parity: loader-only (why)" for a check
// across values the schema cannot express (its description names them). A "bad (regex
// syntax: ...)" plan is rejected by the schema through format: regex, which ajv checks and
// yaml-language-server does not.
type parityCase struct {
	file, verdict, why string
}

func parityCorpus(t *testing.T) []parityCase {
	t.Helper()
	files, err := filepath.Glob("testdata/parity/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []parityCase
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Scan()
		fh.Close()
		v, ok := strings.CutPrefix(sc.Text(), "# parity: ")
		if !ok {
			t.Fatalf("%s: first line must be # parity: ok|bad|loader-only (why)", f)
		}
		v, why, _ := strings.Cut(v, " ")
		cases = append(cases, parityCase{f, v, strings.Trim(why, "()")})
	}
	if len(cases) < 60 {
		t.Fatalf("only %d plans in testdata/parity; want at least 60", len(cases))
	}
	return cases
}

// parityInputs returns the corpus, the schema written to a file, and the corpus's files.
func parityInputs(t *testing.T) (cases []parityCase, schema string, files []string) {
	t.Helper()
	cases = parityCorpus(t)
	schema = filepath.Join(t.TempDir(), "schema.json")
	if err := os.WriteFile(schema, Schema(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		files = append(files, c.file)
	}
	return cases, schema, files
}

// loaderAccepts is refreshd validate's verdict: the file loads (as one plan or one per
// instance) and every step instance renders.
func loaderAccepts(file string) (bool, string) {
	plans, err := LoadPlans(file)
	for _, p := range plans {
		if err == nil {
			_, err = Expand(p)
		}
	}
	if err != nil {
		return false, err.Error()
	}
	return true, ""
}

// TestSchemaParity checks the loader (as refreshd validate runs it) and the JSON Schema,
// through ajv, on the parity corpus: they agree on every plan except the loader-only ones,
// which the loader rejects and the schema accepts.
func TestSchemaParity(t *testing.T) {
	ajv := testkit.Need(t, "ajv")[0]
	cases, schema, files := parityInputs(t)
	verdicts := ajvVerdicts(t, ajv, schema, files)
	for _, c := range cases {
		loaderOK, loaderErr := loaderAccepts(c.file)
		schemaOK := verdicts[c.file] == "valid"
		wantLoader, wantSchema := c.verdict == "ok", c.verdict == "ok" || c.verdict == "loader-only"
		if loaderOK != wantLoader {
			t.Errorf("%s (%s): the loader says ok=%v %s", c.file, c.verdict, loaderOK, loaderErr)
		}
		if schemaOK != wantSchema {
			t.Errorf("%s (%s): ajv says %s", c.file, c.verdict, verdicts[c.file])
		}
	}
}
