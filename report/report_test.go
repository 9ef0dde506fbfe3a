package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
)

// fixture is a finished run with every kind of record; the attempt log lives in dir.
func fixture(t *testing.T, dir string) *history.Run {
	t.Helper()
	at := func(s float64) time.Time {
		return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
	}
	logFile := filepath.Join(dir, "build.1.log")
	os.WriteFile(logFile, []byte("step 1/3\nERROR: failed to export cache: 503 Service Unavailable\n"), 0o644)
	return &history.Run{
		ID: "demo_main-20260102T030405.000Z-abcd", Plan: "demo/main", Trigger: history.TriggerSchedule, Scheduled: at(0),
		Params: map[string]string{"upgrade": "true", "ref": "main"},
		Vars:   []history.RunVar{{Name: "python", Step: "python-versions", Values: []string{"3.11", "3.12"}, List: true}},
		Start:  at(0), End: at(95.5), Status: history.StatusFailed, Reason: "step verify failed: attempt 1 of 1: cache tags missing",
		Warnings: []string{"build[linux/386]: ran on node n0, not n1"},
		Freshness: []history.Freshness{
			{Pos: "plans/demo.yaml:40:9", Step: "refresh-cache", Fresh: false, Why: "missing in the registry: r/ci/python3.12:cache-linux-amd64"},
			{Pos: "plans/demo.yaml:12:5", Fresh: true, Why: "branch constraints-main last commit 1h0m0s ago (2026-01-02T02:04:05Z), within 6h0m0s"},
		},
		Source: &history.Source{Step: "checkout", Repo: "https://github.com/apache/airflow.git", Ref: "main",
			Commit: "89abcdef0123456789abcdef0123456789abcdef", Previous: "0123456789abcdef0123456789abcdef01234567", Changed: true, Path: "/srv/airflow"},
		Steps: []history.Step{
			{Instance: "build[linux/amd64]", Status: history.StatusSucceeded, Start: at(0), End: at(60), Node: "n0",
				Attempts: []history.Attempt{
					{N: 1, Start: at(0), End: at(20), ExitCode: 1, Error: "exit code 1", Log: logFile},
					{N: 2, Start: at(30), End: at(60), ExitCode: 0},
				},
				Caches: []history.Cache{{Ref: "r/ci:cache-linux-amd64", Before: "sha256:aaa", After: "sha256:bbb", Changed: true, Verified: true}}},
			{Instance: "test-gate[python=3.12]", Status: history.StatusSucceeded, Start: at(60), End: at(60),
				Tests: &history.Tests{Report: "/srv/airflow/main/files/test_result-always-sqlite.xml", Total: 120, Skipped: 3}},
			{Instance: "publish", Status: history.StatusSucceeded, Start: at(60), End: at(62),
				Attempts: []history.Attempt{{N: 1, Start: at(60), End: at(62)}},
				Publish: &history.Publish{Repo: "https://example.com/c.git", Branch: "constraints-main", Commit: "0123abc", Changed: true,
					Summary: "1 upgraded, 1 added", PushAttempts: 2, Changes: []history.PackageChange{
						{File: "constraints-3.12.txt", Package: "requests", Old: "2.31.0", New: "2.32.3"},
						{File: "constraints-3.12.txt", Package: "rich", New: "13.7.1"}}}},
			{Instance: "verify", Status: history.StatusFailed, Reason: "attempt 1 of 1: cache tags missing", Start: at(62), End: at(95.5),
				Attempts: []history.Attempt{{N: 1, Start: at(62), End: at(95.5), ExitCode: -1, Signal: "killed", Error: "timed out"}}},
			{Instance: "after", Status: history.StatusSkipped, Reason: "needs verify which failed"},
			{Instance: "stop-arm-node", Status: history.StatusSucceeded, Start: at(95.5), End: at(96), When: "always", After: "verify failed",
				Attempts: []history.Attempt{{N: 1, Start: at(95.5), End: at(96)}}},
		},
	}
}

func TestRender(t *testing.T) {
	time.Local = time.UTC // the golden files show times as the operator's local time
	dir := t.TempDir()
	r := fixture(t, dir)
	var buf bytes.Buffer
	dry := *r
	dry.ID, dry.DryRun, dry.Status, dry.Reason = r.ID+"-dry", true, history.StatusSucceeded, ""
	Runs(&buf, []*history.Run{r, &dry})
	testkit.Golden(t, "testdata/runs.golden", buf.String())

	buf.Reset()
	Run(&buf, r, "", true)
	testkit.Golden(t, "testdata/run.golden", strings.ReplaceAll(buf.String(), dir, "DIR"))

	buf.Reset()
	Run(&buf, r, "build", false)
	if out := buf.String(); !strings.Contains(out, "build[linux/amd64]") || strings.Contains(out, "publish") {
		t.Errorf("filter by step id:\n%s", out)
	}
	buf.Reset()
	if err := WriteLogsJSON(&buf, r, "build[linux/amd64]"); err != nil {
		t.Fatal(err)
	}
	var logs struct {
		Run  *history.Run `json:"run"`
		Logs []struct {
			Instance, Path, Output, Error string
			N                             int
		} `json:"logs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &logs); err != nil {
		t.Fatalf("WriteLogsJSON wrote invalid JSON: %v\n%s", err, buf.String())
	}
	if len(logs.Run.Steps) != 1 || len(logs.Logs) != 2 || !strings.Contains(logs.Logs[0].Output, "503") || logs.Logs[1].N != 2 {
		t.Errorf("WriteLogsJSON: %+v", logs)
	}
}

// TestLogsStreamLargeFile renders an 8 MiB log with long lines, multi-byte characters on
// chunk boundaries and no final newline, as text and as JSON: the output is exact (the JSON
// decodes to the file's bytes) and the memory allocated stays a small fraction of the file.
func TestLogsStreamLargeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("é✓x\"\\\t\x01", 20000) + "\xff" // longer than a chunk; 2- and 3-byte runes, escapes, a bad byte
	var want strings.Builder
	for want.Len() < 8<<20 {
		want.WriteString(line)
		want.WriteString("\n")
	}
	want.WriteString("no newline at the end")
	if _, err := f.WriteString(want.String()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := &history.Run{ID: "r", Steps: []history.Step{{Instance: "s", Attempts: []history.Attempt{{N: 1, Log: path}}}}}

	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var js countingWriter
	if err := WriteLogsJSON(&js, r, ""); err != nil {
		t.Fatal(err)
	}
	var text countingWriter
	Run(&text, r, "", true)
	runtime.ReadMemStats(&ms1)
	if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 4<<20 {
		t.Errorf("rendering an 8 MiB log allocated %d MiB", alloc>>20)
	}

	var out bytes.Buffer
	if err := WriteLogsJSON(&out, r, ""); err != nil {
		t.Fatal(err)
	}
	var logs struct{ Logs []struct{ Output string } }
	if err := json.Unmarshal(out.Bytes(), &logs); err != nil {
		t.Fatal(err)
	}
	if len(logs.Logs) != 1 || logs.Logs[0].Output != strings.ToValidUTF8(want.String(), "\uFFFD") {
		t.Errorf("JSON output differs from the file (%d bytes vs %d)", len(logs.Logs[0].Output), want.Len())
	}
	if text.n < int64(want.Len()) {
		t.Errorf("text output %d bytes, file %d", text.n, want.Len())
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func TestLiveView(t *testing.T) {
	var buf bytes.Buffer
	l := NewLive(&buf, 60)
	r := &history.Run{ID: "r", Steps: []history.Step{{Instance: "a", Status: history.StatusWaiting}, {Instance: "b", Status: history.StatusWaiting}}}
	l.RunStarted(r)
	l.StepChanged("r", &history.Step{Instance: "a", Status: history.StatusRunning, Start: time.Now()})
	l.Line("r", "a", "\x1b[32mprogress\r 50%")
	l.StepChanged("r", &history.Step{Instance: "a", Status: history.StatusRunning, Start: time.Now()})
	l.Write([]byte("level=WARN msg=careful\n"))
	l.StepChanged("r", &history.Step{Instance: "b", Status: history.StatusSkipped, Reason: "needs x which failed"})
	out := buf.String()
	// Each redraw moves up over the 2 lines of the table it replaces.
	if !strings.Contains(out, "\x1b[2A\r\x1b[J") {
		t.Errorf("no in-place redraw in %q", out)
	}
	last := out[strings.LastIndex(out, "\x1b[J")+3:]
	want := "▶ running   a  0s  [32mprogress 50%\n- skipped   b  needs x which failed\n"
	if last != want {
		t.Errorf("last frame:\n%q\nwant\n%q", last, want)
	}
	if !strings.Contains(out, "level=WARN msg=careful\n") {
		t.Error("log record not printed above the table")
	}
}

// An attempt cut short by a crash says so, not "not started" (which is an attempt whose
// process never ran).
func TestAttemptOutcome(t *testing.T) {
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		a    history.Attempt
		want string
	}{
		{history.Attempt{N: 1}, "running"},
		{history.Attempt{N: 1, End: end, ExitCode: -1, Error: "refreshd stopped while the run was running", Interrupted: true}, "interrupted"},
		{history.Attempt{N: 1, End: end, ExitCode: -1, Signal: "killed"}, "signal: killed"},
		{history.Attempt{N: 1, End: end, ExitCode: 3}, "exit code 3"},
		{history.Attempt{N: 1, End: end, ExitCode: -1, Error: `exec: "nope": executable file not found in $PATH`}, "not started"},
	} {
		if got := AttemptOutcome(tt.a); got != tt.want {
			t.Errorf("AttemptOutcome(%+v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"a\n\tb\r\n c", 10, "a b c"},
		{"0123456789abc", 10, "012345678…"},
		{"ünïcödé ünïcödé", 8, "ünïcödé…"},
		{"word    word", 6, "word…"},
		{"\x1b[31mred\x1b[0m", 20, "[31mred [0m"},
		{"no limit \x07", 0, "no limit"},
		// Format characters ("Trojan Source"): the line shows what it holds, in its order.
		{"ok \u202enuf.exe", 0, "ok nuf.exe"},             // RIGHT-TO-LEFT OVERRIDE
		{"a\u202ab\u202bc\u202cd\u202de", 0, "a b c d e"}, // embeddings, pop, LRO
		{"x\u2066y\u2067z\u2068w\u2069v", 0, "x y z w v"}, // isolates
		{"mark\u200eed\u200f", 0, "mark ed"},              // LRM, RLM
		{"zero\u200bwidth\ufeff", 0, "zero width"},        // ZWSP, BOM
		{"\u202e\u2066\u200f", 0, ""},
	}
	for _, tt := range tests {
		if got := OneLine(tt.in, tt.max); got != tt.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
