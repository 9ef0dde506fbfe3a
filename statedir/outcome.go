package statedir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/refreshd/refreshd/history"
)

// An outcome file keeps how a run ended when the history store could not record it (a full
// disk, an I/O error): DIR/runs/RUN/outcome.json, reserved when the run starts so that
// writing it at the end needs no new space. Recover reads it, so a run the store could not
// record is shown after a restart as what it was, not as a crash and never as a success it
// was not.

// outcomeSize is reserved for the outcome; the reason is cut to fit.
const outcomeSize = 4096

// Outcome is a run's end as kept in its outcome file.
type Outcome struct {
	Status     history.Status `json:"status"`
	Reason     string         `json:"reason,omitempty"`
	End        time.Time      `json:"end"`
	StoreError string         `json:"store_error"`
}

// Outcome is the path of run's outcome file.
func (d Dir) Outcome(run string) string { return filepath.Join(d.RunScratch(run), "outcome.json") }

// ReserveOutcome allocates run's outcome file, empty of content (all spaces).
func (d Dir) ReserveOutcome(run string) error {
	path := d.Outcome(run)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("reserve outcome file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("reserve outcome file: %w", err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, outcomeSize); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("reserve outcome file %s: %w", path, err)
	}
	blank := make([]byte, outcomeSize)
	for i := range blank {
		blank[i] = ' '
	}
	if _, err := f.WriteAt(blank, 0); err != nil {
		return fmt.Errorf("reserve outcome file %s: %w", path, err)
	}
	return nil
}

// WriteOutcome writes o into run's reserved outcome file, in place, and syncs it.
func (d Dir) WriteOutcome(run string, o Outcome) error {
	path := d.Outcome(run)
	var data []byte
	for {
		var err error
		if data, err = json.Marshal(o); err != nil {
			return fmt.Errorf("write outcome of run %s: %w", run, err)
		}
		if len(data) <= outcomeSize || o.Reason == "" {
			break
		}
		o.Reason = o.Reason[:len(o.Reason)/2] + "…"
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write outcome of run %s: %w", run, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write outcome of run %s to %s: %w", run, path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write outcome of run %s to %s: %w", run, path, err)
	}
	return nil
}

// ReadOutcome returns run's outcome, or nil when none was written (the file is absent or
// still blank: the run's end was recorded in the store, or the process died first).
func (d Dir) ReadOutcome(run string) (*Outcome, error) {
	data, err := os.ReadFile(d.Outcome(run))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outcome of run %s: %w", run, err)
	}
	var o Outcome
	if err := json.Unmarshal(bytes.TrimSpace(data), &o); err != nil || o.Status == "" {
		return nil, nil // blank (reserved, never written) or torn: nothing to restore
	}
	return &o, nil
}
