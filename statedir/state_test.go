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
// had handed a commit to git push with what Reconcile says of the branch, and so each
// publish whose push a stop cut short (recorded interrupted, nothing published, not yet
// reconciled); a publish that completed, never pushed, failed or was reconciled before is
// left alone.
func TestOpenReconcilesInterruptedPublishes(t *testing.T) {
	root := t.TempDir()
	store, err := history.Open(Dir{Root: root}.History())
	if err != nil {
		t.Fatal(err)
	}
	const published = "interrupted while pushing; commit %s on branch c at restart (a push the branch could still take is finished first, never forced): published"
	stopped := func(step history.Status, reconciled string) func(*history.Run) {
		return func(r *history.Run) {
			r.Status, r.Reason, r.Steps[0].Status, r.Steps[0].Publish.Reconciled = history.StatusInterrupted, "refreshd stopping (SIGTERM)", step, reconciled
		}
	}
	runs := []struct {
		id      string
		publish *history.Publish
		want    history.Publish      // after Open
		stopped func(r *history.Run) // how a stop recorded the run; nil: left running
	}{
		{"on-branch", &history.Publish{Branch: "c", Pushing: "aaa"},
			history.Publish{Branch: "c", Pushing: "aaa", Commit: "aaa", Reconciled: fmt.Sprintf(published, "aaa")}, nil},
		{"absent", &history.Publish{Branch: "c", Pushing: "bbb"},
			history.Publish{Branch: "c", Pushing: "bbb", Reconciled: "interrupted while pushing; commit bbb not on branch c at restart: not published"}, nil},
		{"unreachable", &history.Publish{Branch: "c", Pushing: "ccc"},
			history.Publish{Branch: "c", Pushing: "ccc", Reconciled: "interrupted while pushing ccc; could not check the branch at restart: remote down"}, nil},
		{"pushed before the kill", &history.Publish{Branch: "c", Pushing: "ddd", Commit: "ddd"},
			history.Publish{Branch: "c", Pushing: "ddd", Commit: "ddd"}, nil},
		{"never pushed", &history.Publish{Branch: "c"}, history.Publish{Branch: "c"}, nil},
		{"push cut by a stop", &history.Publish{Branch: "c", Pushing: "aaa"},
			history.Publish{Branch: "c", Pushing: "aaa", Commit: "aaa", Reconciled: fmt.Sprintf(published, "aaa")}, stopped(history.StatusInterrupted, "")},
		{"push refused, then a stop", &history.Publish{Branch: "c", Pushing: "eee"},
			history.Publish{Branch: "c", Pushing: "eee"}, stopped(history.StatusFailed, "")},
		{"reconciled at an earlier start", &history.Publish{Branch: "c", Pushing: "fff"},
			history.Publish{Branch: "c", Pushing: "fff", Reconciled: "earlier"}, stopped(history.StatusInterrupted, "earlier")},
	}
	for _, r := range runs {
		rec := &history.Run{ID: r.id, Plan: "p", Start: time.Now(), Status: history.StatusRunning,
			Steps: []history.Step{{Instance: "publish", Status: history.StatusRunning, Publish: r.publish}}}
		if r.stopped != nil {
			r.stopped(rec)
		}
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
	if len(st.Interrupted) != 5 {
		t.Errorf("interrupted %v, want the 5 runs left running", st.Interrupted)
	}
	if want := "[true p aaa true p aaa true p bbb true p ccc]"; fmt.Sprint(slices.Sorted(slices.Values(asked))) != want {
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
