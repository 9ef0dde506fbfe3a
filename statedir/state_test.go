package statedir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
)

// Open holds the lock, marks runs left running interrupted and reconciles each publish that
// had handed a commit to git push with what Reconcile says of the branch; a publish that
// completed or never pushed is left alone.
func TestOpenReconcilesInterruptedPublishes(t *testing.T) {
	root := t.TempDir()
	store, err := history.Open(Dir{Root: root}.History())
	if err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		id      string
		publish *history.Publish
		want    history.Publish // after Open
	}{
		{"on-branch", &history.Publish{Branch: "c", Pushing: "aaa"},
			history.Publish{Branch: "c", Pushing: "aaa", Commit: "aaa", Reconciled: "interrupted while pushing; commit aaa found on branch c at restart: published"}},
		{"absent", &history.Publish{Branch: "c", Pushing: "bbb"},
			history.Publish{Branch: "c", Pushing: "bbb", Reconciled: "interrupted while pushing; commit bbb not on branch c at restart: not published"}},
		{"unreachable", &history.Publish{Branch: "c", Pushing: "ccc"},
			history.Publish{Branch: "c", Pushing: "ccc", Reconciled: "interrupted while pushing ccc; could not check the branch at restart: remote down"}},
		{"pushed before the kill", &history.Publish{Branch: "c", Pushing: "ddd", Commit: "ddd"},
			history.Publish{Branch: "c", Pushing: "ddd", Commit: "ddd"}},
		{"never pushed", &history.Publish{Branch: "c"}, history.Publish{Branch: "c"}},
	}
	for _, r := range runs {
		rec := &history.Run{ID: r.id, Plan: "p", Start: time.Now(), Status: history.StatusRunning,
			Steps: []history.Step{{Instance: "publish", Status: history.StatusRunning, Publish: r.publish}}}
		if err := store.SaveRun(rec); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	var asked []string
	st, err := Open(context.Background(), root, Options{Reconcile: func(_ context.Context, stateDir, plan string, p history.Publish) (bool, error) {
		asked = append(asked, fmt.Sprintf("%t %s %s", stateDir == root, plan, p.Pushing))
		switch p.Pushing {
		case "aaa":
			return true, nil
		case "ccc":
			return false, errors.New("remote down")
		}
		return false, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if len(st.Interrupted) != len(runs) {
		t.Errorf("interrupted %v, want %d runs", st.Interrupted, len(runs))
	}
	if want := "[true p aaa true p bbb true p ccc]"; fmt.Sprint(slices.Sorted(slices.Values(asked))) != want {
		t.Errorf("Reconcile asked for %v, want %s", asked, want)
	}
	for _, r := range runs {
		got, err := st.Store.Run(r.id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != history.StatusInterrupted || !reflect.DeepEqual(*got.Steps[0].Publish, r.want) {
			t.Errorf("%s: %s, publish %+v; want interrupted, %+v", r.id, got.Status, *got.Steps[0].Publish, r.want)
		}
	}

	// A second Open of the same directory is refused, naming the holder.
	if _, err := Open(context.Background(), root, Options{}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by process %d", os.Getpid())) {
		t.Errorf("second Open: %v", err)
	}
}

// Every path is named here, under the root; a name that is not safe as it is stays one
// component of its directory (SafeName).
func TestDirPaths(t *testing.T) {
	d := Dir{Root: "/s"}
	for _, tt := range []struct{ got, want string }{
		{d.LockFile(), "/s/refreshd.lock"},
		{d.History(), "/s/history.db"},
		{d.RunLogs("r1"), "/s/logs/r1"},
		{d.Log("r1", "build", 2), "/s/logs/r1/build.2.log"},
		{d.RunScratch("r1"), "/s/runs/r1"},
		{d.Metadata("r1", "cache"), "/s/runs/r1/cache.json"},
		{d.Locks(), "/s/locks"},
		{d.BuilderLock("x"), "/s/locks/builder-x.lock"},
		{d.Git(), "/s/git"},
		{d.Work("p"), "/s/work/p"},
		{filepath.Dir(d.Work("../p")), "/s/work"},
		{filepath.Dir(d.Log("r1", "a/b", 1)), "/s/logs/r1"},
		{filepath.Dir(d.BuilderLock("../x")), "/s/locks"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}
