package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
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

// TestCorruptStore damages a real store in the ways disks and crashes do and checks that
// Open never panics: it moves the file aside, starts an empty store that works, and says so
// in Recovered; OpenReadOnly (refreshd history --state) returns an error wrapping ErrCorrupt
// and leaves the file alone.
func TestCorruptStore(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"truncated to half", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage leaf page", garbagePage("leaf")},
		{"garbage branch page", garbagePage("branch")},
		{"garbage freelist page", garbagePage("freelist")},
		{"garbage meta pages", func(t *testing.T, path string) {
			overwrite(t, path, 0, 2*os.Getpagesize())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.db")
			fillStore(t, path, 600)
			tt.damage(t, path)

			if ro, err := OpenReadOnly(path); !errors.Is(err, ErrCorrupt) {
				if ro != nil {
					ro.Close()
				}
				t.Fatalf("OpenReadOnly = %v, want ErrCorrupt", err)
			}
			s, err := Open(path, WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			rec := s.Recovered()
			if rec == nil || !strings.Contains(rec.Err, "corrupt") {
				t.Fatalf("Recovered = %+v, want the corruption", rec)
			}
			if _, err := os.Stat(rec.MovedTo); err != nil || !strings.HasPrefix(rec.MovedTo, path+".corrupt-") {
				t.Errorf("corrupt file not kept at %q: %v", rec.MovedTo, err)
			}
			if runs, err := s.Runs("", 0); err != nil || len(runs) != 0 {
				t.Errorf("fresh store: %d runs, %v", len(runs), err)
			}
			if err := s.SaveRun(&Run{ID: "after", Plan: "p", Status: StatusSucceeded}); err != nil {
				t.Errorf("fresh store cannot save: %v", err)
			}
		})
	}
}

func TestHealthyStoreNotRecovered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	fillStore(t, path, 50)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec := s.Recovered(); rec != nil {
		t.Errorf("healthy store recovered: %+v", rec)
	}
	if runs, _ := s.Runs("", 0); len(runs) != 50 {
		t.Errorf("%d runs, want 50", len(runs))
	}
}

// fillStore writes n runs, enough for branch pages above the leaves.
func fillStore(t *testing.T, path string, n int) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error { // one transaction: n fsyncs would take seconds
		for i := range n {
			r := &Run{ID: fmt.Sprintf("run-%05d", i), Plan: "p", Status: StatusSucceeded, Reason: strings.Repeat("x", 100)}
			data, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := tx.Bucket([]byte(bucketRuns)).Put([]byte(r.ID), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second write frees pages, so the file has a freelist with entries.
	if err := s.SaveRun(&Run{ID: "run-00000", Plan: "p", Status: StatusFailed}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// garbagePage overwrites the first page of the given bbolt page type with random bytes.
func garbagePage(typ string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		var found = -1
		err = db.View(func(tx *bolt.Tx) error {
			for id := 2; ; id++ {
				info, err := tx.Page(id)
				if err != nil || info == nil {
					return err
				}
				if info.Type == typ {
					found = id
					return nil
				}
			}
		})
		db.Close()
		if err != nil || found < 0 {
			t.Fatalf("no %s page in the store (%v)", typ, err)
		}
		overwrite(t, path, int64(found*os.Getpagesize()), os.Getpagesize())
	}
}

func overwrite(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, n)
	rnd := rand.New(rand.NewPCG(uint64(off), uint64(n)))
	for i := range junk {
		junk[i] = byte(rnd.UintN(256))
	}
	if _, err := f.WriteAt(junk, off); err != nil {
		t.Fatal(err)
	}
}
