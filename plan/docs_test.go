package plan_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/plan"
)

// docs are the project's documents a newcomer walks: the README and docs/.
func docs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join("..", "README.md"), filepath.Join("..", "HACKING.md")}, files...)
}

// fence is one fenced code block of a document.
type fence struct {
	file string
	line int    // of the opening fence
	info string // the fence's info string: "yaml plan", "sh", ...
	body string
}

func fences(t *testing.T, file string) []fence {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fence
	var cur *fence
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &fence{file: file, line: n, info: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			b.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.body = b.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			b.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Errorf("%s:%d: a code block that never ends", file, cur.line)
	}
	return out
}

// Every code block a document marks as a plan (```yaml plan) loads: a newcomer who copies
// one gets a working plan, not a load error.
func TestDocumentedPlansLoad(t *testing.T) {
	dir := t.TempDir()
	n := 0
	for _, doc := range docs(t) {
		for _, f := range fences(t, doc) {
			if f.info != "yaml plan" {
				continue
			}
			n++
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.yaml", filepath.Base(doc), f.line))
			if err := os.WriteFile(file, []byte(f.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := plan.LoadFiles([]string{file}); err != nil {
				t.Errorf("%s:%d: the plan shown does not load:\n%v", doc, f.line, err)
			}
		}
	}
	if n == 0 {
		t.Error("no document shows a plan (```yaml plan): the README's first plan is one")
	}
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`^#{1,6}\s+(.*)$`)
)

// anchors are the fragment names GitHub gives a document's headings.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	inFence := false
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		m := heading.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if inFence || m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// Every relative link of the documents names a file of the repository, and a heading of it
// when it has a fragment: a document moved or a heading renamed fails here, not for a reader.
func TestDocumentLinks(t *testing.T) {
	for _, doc := range docs(t) {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, f := range fences(t, doc) {
			text = strings.Replace(text, f.body, "", 1) // links in code blocks are code
		}
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), path)
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %s: no such file", doc, target)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(file, ".md") && !anchors(t, file)[frag] {
				t.Errorf("%s: link %s: %s has no heading #%s", doc, target, file, frag)
			}
		}
	}
}
