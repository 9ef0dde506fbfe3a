package statedir

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/refreshd/refreshd/history"
)

// A run's journal, DIR/runs/RUN/journal, holds every change to its steps as it happens, a
// line each ("INDEX STEP-JSON", the step already redacted), appended with one write(2) and
// no fsync. The page cache keeps it through a kill -9 of refreshd, which is what it is for:
// the store is saved in the background, coalescing changes, so a step costs no synchronous
// store write, and the next start replays the journal over the store's record before it
// stops the process groups the record names and marks the run interrupted. After a power
// loss the journal may be short, and the store's last save is what remains: the groups it
// would name died with the boot.

// Journal is the path of run's journal.
func (d Dir) Journal(run string) string { return filepath.Join(d.RunScratch(run), "journal") }

// OpenJournal creates run's journal for appending.
func (d Dir) OpenJournal(run string) (*Journal, error) {
	path := d.Journal(run)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open run journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open run journal: %w", err)
	}
	return &Journal{f: f}, nil
}

// Journal appends step changes of one run. It is not safe for concurrent use; the engine
// writes it under its record lock, in the order of the changes.
type Journal struct {
	f   *os.File
	buf []byte
}

// Step appends step i as it is now.
func (j *Journal) Step(i int, s *history.Step) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	j.buf = strconv.AppendInt(j.buf[:0], int64(i), 10)
	j.buf = append(j.buf, ' ')
	j.buf = append(j.buf, data...)
	j.buf = append(j.buf, '\n')
	if _, err := j.f.Write(j.buf); err != nil {
		return fmt.Errorf("append to run journal %s: %w", j.f.Name(), err)
	}
	return nil
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }

// replayJournal applies run r's journal to its record and saves it, so the recovery sees
// every step change made before refreshd died, not only the last background save.
func (d Dir) replayJournal(store *history.Store, r *history.Run, log *slog.Logger) {
	f, err := os.Open(d.Journal(r.ID))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		log.Error("read the journal of a run left running", "run", r.ID, "err", err)
		return
	}
	defer f.Close()
	applied := 0
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break // EOF, or a torn last line from a kill mid-write: ignored
		}
		idx, js, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		i, aerr := strconv.Atoi(idx)
		if !ok || aerr != nil || i < 0 || i >= len(r.Steps) {
			continue
		}
		var s history.Step
		if json.Unmarshal([]byte(js), &s) != nil {
			continue
		}
		r.Steps[i] = s
		applied++
	}
	if applied == 0 {
		return
	}
	if err := store.SaveRun(r); err != nil {
		log.Error("save the journal of a run left running", "run", r.ID, "err", err)
	}
}
