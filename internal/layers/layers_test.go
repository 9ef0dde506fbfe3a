package layers

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/refreshd/refreshd"

// drawing reads the layer table of docs/architecture.md's "## Layers" section: "N  pkg pkg ..." with
// continuation lines indented, N a layer number, or T for packages that only tests may
// import.
func drawing(t *testing.T) (layer map[string]int, testOnly map[string]bool) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	layer, testOnly = map[string]int{}, map[string]bool{}
	row := regexp.MustCompile(`^([0-9]+|T)\s+(.*)$`)
	var in, fence bool
	current := -1
	isTest := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Layers"
			continue
		case !in:
			continue
		case strings.HasPrefix(line, "```"):
			if fence {
				return layer, testOnly // the first block of the section is the drawing
			}
			fence = true
			continue
		case !fence:
			continue
		}
		pkgs := line
		if m := row.FindStringSubmatch(line); m != nil {
			isTest = m[1] == "T"
			if !isTest {
				current, _ = strconv.Atoi(m[1])
			}
			pkgs = m[2]
		} else if !strings.HasPrefix(line, " ") || current < 0 && !isTest {
			t.Fatalf("docs/architecture.md's layer drawing: line %q is neither a row nor its continuation", line)
		}
		for _, p := range strings.Fields(pkgs) {
			if isTest {
				testOnly[p] = true
			} else {
				layer[p] = current
			}
		}
	}
	t.Fatal("docs/architecture.md has no code block under ## Layers")
	return nil, nil
}

// TestImportsFollowTheDrawing fails on any import of a package of this module that does
// not go down docs/architecture.md's layers, on a package the drawing does not list, and on a
// production package importing a test-only one.
func TestImportsFollowTheDrawing(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	layer, testOnly := drawing(t)
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	listed := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		listed[pkg] = true
		if strings.HasPrefix(pkg, "e2e/") {
			continue // end-to-end tests: test files only
		}
		l, drawn := layer[pkg]
		if !drawn && !testOnly[pkg] {
			t.Errorf("package %s is not in docs/architecture.md's layer drawing", pkg)
			continue
		}
		for _, imp := range f[1:] {
			dep, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			switch dl, ddrawn := layer[dep]; {
			case testOnly[dep] && !testOnly[pkg]:
				t.Errorf("%s imports %s, which only tests may import", pkg, dep)
			case testOnly[pkg]:
			case !ddrawn:
				t.Errorf("%s imports %s, which docs/architecture.md's layer drawing does not list", pkg, dep)
			case dl >= l:
				t.Errorf("%s (layer %d) imports %s (layer %d): an import must go down the layers", pkg, l, dep, dl)
			}
		}
	}
	for p := range layer {
		if !listed[p] {
			t.Errorf("docs/architecture.md's layer drawing lists %s, which is not a package", p)
		}
	}
	for p := range testOnly {
		if !listed[p] {
			t.Errorf("docs/architecture.md's layer drawing lists %s, which is not a package", p)
		}
	}
}
