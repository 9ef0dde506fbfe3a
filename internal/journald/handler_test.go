package journald

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type entry struct {
	msg    string
	pri    journal.Priority
	fields map[string]string
}

func capture(fail bool) (SendFunc, *[]entry) {
	var got []entry
	return func(msg string, pri journal.Priority, fields map[string]string) error {
		if fail {
			return errors.New("journal socket gone")
		}
		got = append(got, entry{msg, pri, fields})
		return nil
	}, &got
}

func TestHandler(t *testing.T) {
	send, got := capture(false)
	log := slog.New(NewHandler(Options{Level: slog.LevelDebug, Identifier: "refreshd", Send: send, Module: "github.com/refreshd/refreshd"}))
	runLog := log.With("plan", "airflow-main", "run", "airflow-main-20261130T030000Z-ab12")
	runLog.Debug("builder state", "builder", "cache")
	runLog.Info("step output", "step", "build[python=3.11]", "attempt", 2, "line", `say "hi"`)
	runLog.Warn("retrying", "err", "429 Too Many Requests")
	runLog.Error("step failed", "step", "verify", "err", errors.New("manifest unknown"))
	log.WithGroup("http").Info("request", "status", 401, slog.Group("peer", "uid", 1000))
	log.Info("keys that clash", "message", "m", "priority", "p", "2fa", "x", "_hidden", "h", "exit-code", 3)

	tests := []struct {
		msg    string
		pri    journal.Priority
		fields map[string]string
	}{
		{`builder state plan=airflow-main run=airflow-main-20261130T030000Z-ab12 builder=cache`, journal.PriDebug,
			map[string]string{"PLAN": "airflow-main", "BUILDER": "cache"}},
		{`step output plan=airflow-main run=airflow-main-20261130T030000Z-ab12 step="build[python=3.11]" attempt=2 line="say \"hi\""`, journal.PriInfo,
			map[string]string{"PLAN": "airflow-main", "RUN": "airflow-main-20261130T030000Z-ab12", "STEP": "build[python=3.11]", "ATTEMPT": "2", "LINE": `say "hi"`}},
		{`retrying plan=airflow-main run=airflow-main-20261130T030000Z-ab12 err="429 Too Many Requests"`, journal.PriWarning,
			map[string]string{"ERR": "429 Too Many Requests"}},
		{`step failed plan=airflow-main run=airflow-main-20261130T030000Z-ab12 step=verify err="manifest unknown"`, journal.PriErr,
			map[string]string{"STEP": "verify", "ERR": "manifest unknown", "SYSLOG_IDENTIFIER": "refreshd"}},
		{`request http.status=401 http.peer.uid=1000`, journal.PriInfo,
			map[string]string{"HTTP_STATUS": "401", "HTTP_PEER_UID": "1000"}},
		{`keys that clash message=m priority=p 2fa=x _hidden=h exit-code=3`, journal.PriInfo,
			map[string]string{"REFRESHD_MESSAGE": "m", "REFRESHD_PRIORITY": "p", "REFRESHD_2FA": "x", "HIDDEN": "h", "EXIT_CODE": "3"}},
	}
	if len(*got) != len(tests) {
		t.Fatalf("%d entries, want %d", len(*got), len(tests))
	}
	for i, tt := range tests {
		e := (*got)[i]
		if e.msg != tt.msg || e.pri != tt.pri {
			t.Errorf("entry %d: %q priority %d, want %q priority %d", i, e.msg, e.pri, tt.msg, tt.pri)
		}
		for k, v := range tt.fields {
			if e.fields[k] != v {
				t.Errorf("entry %d: %s=%q, want %q (fields %v)", i, k, e.fields[k], v, e.fields)
			}
		}
		for k := range e.fields {
			if k == "MESSAGE" || k == "PRIORITY" || strings.HasPrefix(k, "_") || strings.ToUpper(k) != k {
				t.Errorf("entry %d: field %q must not be sent", i, k)
			}
		}
		if e.fields["CODE_FILE"] != "internal/journald/handler_test.go" || e.fields["CODE_LINE"] == "" {
			t.Errorf("entry %d: CODE_FILE %q CODE_LINE %q, want this test file relative to the module", i, e.fields["CODE_FILE"], e.fields["CODE_LINE"])
		}
	}
}

// CODE_FILE never carries the build machine's path: the package's import path, relative
// to the module when it is in it.
func TestCodeFile(t *testing.T) {
	tests := []struct {
		function, file, module, mainPkg, want string
	}{
		{"github.com/refreshd/refreshd/executor.(*runState).runInstance", "/work/main/executor/instance.go", "github.com/refreshd/refreshd", "main", "executor/instance.go"},
		{"github.com/refreshd/refreshd/executor.(*runState).runInstance", "/work/main/executor/instance.go", "", "main", "github.com/refreshd/refreshd/executor/instance.go"},
		{"github.com/refreshd/refreshd/executor/buildx.Provision.func2", "/build/executor/buildx/provision.go", "github.com/refreshd/refreshd", "main", "executor/buildx/provision.go"},
		{"main.main", "/home/me/src/refreshd/cmd/refreshd/main.go", "github.com/refreshd/refreshd", "github.com/refreshd/refreshd/cmd/refreshd", "cmd/refreshd/main.go"},
		{"github.com/refreshd/refreshd.Root", "/x/root.go", "github.com/refreshd/refreshd", "main", "root.go"},
		{"log/slog.(*Logger).Info", "/usr/local/go/src/log/slog/logger.go", "github.com/refreshd/refreshd", "main", "log/slog/logger.go"},
		{"", "/x/y.go", "m", "main", "y.go"},
	}
	for _, tt := range tests {
		got := codeFile(runtime.Frame{Function: tt.function, File: tt.file}, tt.module, tt.mainPkg)
		if got != tt.want {
			t.Errorf("codeFile(%q, %q, %q, %q) = %q, want %q", tt.function, tt.file, tt.module, tt.mainPkg, got, tt.want)
		}
	}
}

func TestLevelFilters(t *testing.T) {
	send, got := capture(false)
	log := slog.New(NewHandler(Options{Level: slog.LevelWarn, Send: send}))
	log.Info("dropped")
	log.Warn("kept")
	if len(*got) != 1 || (*got)[0].msg != "kept" {
		t.Errorf("entries %+v, want only the warning", *got)
	}
}

// A record the journal refuses goes to the fallback handler, whole.
func TestFallback(t *testing.T) {
	send, _ := capture(true)
	var buf bytes.Buffer
	log := slog.New(NewHandler(Options{Send: send, Fallback: slog.NewTextHandler(&buf, nil)})).With("plan", "p")
	log.Error("step failed", "step", "s")
	if out := buf.String(); !strings.Contains(out, `level=ERROR msg="step failed" plan=p step=s`) {
		t.Errorf("fallback got %q", out)
	}
	if err := NewHandler(Options{Send: send}).Handle(context.Background(), slog.Record{}); err == nil {
		t.Error("no fallback: want the send error")
	}
}

// StderrIsJournal holds only when JOURNAL_STREAM names stderr's own device and inode.
func TestStderrIsJournal(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env  string
		want bool
	}{
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false}, // inherited from a parent, stderr redirected
		{"", false},
		{"garbage", false},
	} {
		t.Setenv("JOURNAL_STREAM", tt.env)
		if got := StderrIsJournal(); got != tt.want {
			t.Errorf("JOURNAL_STREAM=%q: %v, want %v", tt.env, got, tt.want)
		}
	}
}
