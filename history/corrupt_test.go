package history

import (
	"bytes"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestUnreadableRecordIsSkipped writes a value that is not a run under a run key with bbolt
// itself: listing, interrupting and pruning still work on every other run (the daemon still
// starts), the bad record is logged with its key and left in place, and only Run of that id
// fails.
func TestUnreadableRecordIsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, st := range []Status{StatusSucceeded, StatusSucceeded, StatusSucceeded, StatusRunning} {
		r := &Run{ID: "run" + string(rune('0'+i)), Plan: "p", Trigger: TriggerManual, Start: base.Add(time.Duration(i) * time.Minute), Status: st}
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketRuns)).Put([]byte("run-bad"), []byte("{not json"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	s, err = Open(path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ids, err := s.InterruptRunning("daemon restarted")
	if err != nil || len(ids) != 1 || ids[0] != "run3" {
		t.Errorf("InterruptRunning = %v, %v; want [run3]", ids, err)
	}
	removed, err := s.Prune("p", 2)
	if err != nil || len(removed) != 2 || removed[0].ID != "run1" || removed[1].ID != "run0" {
		t.Errorf("Prune = %v, %v; want run1 and run0 removed", runIDs(removed), err)
	}
	runs, err := s.Runs("", 0)
	if err != nil || strings.Join(runIDs(runs), ",") != "run3,run2" {
		t.Errorf("Runs = %v, %v; want run3,run2", runIDs(runs), err)
	}
	if _, err := s.Run("run-bad"); err == nil || !strings.Contains(err.Error(), "decode run run-bad") {
		t.Errorf("Run(run-bad) error = %v, want a decode error naming it", err)
	}
	if _, err := s.Run("run-gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Run(run-gone) = %v, want ErrNotFound", err)
	}
	if n := strings.Count(logs.String(), "run=run-bad"); n != 3 {
		t.Errorf("the bad record was logged %d times, want once per listing (3):\n%s", n, logs.String())
	}
}

func runIDs(runs []*Run) []string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	return ids
}
