// Package control is refreshd's control API: HTTP/1.1 with JSON bodies over a Unix socket
// (never TCP: file permissions on the socket are the access control), the server side that
// serves a Service, and the client the CLI uses.
//
//	GET  /v1/status
//	POST /v1/plans/{plan}/run?param=NAME=VALUE   (param repeatable; plan may be PLAN/INSTANCE, escaped)
//	GET  /v1/runs?plan=&limit=
//	GET  /v1/runs/{id}
//	GET  /v1/runs/{id}/logs?step=&follow=1   (text/plain, streamed line by line)
//	POST /v1/runs/{id}/cancel
//	POST /v1/reload
//	GET  /openapi.yaml, /openapi.json         (the OpenAPI 3.1 description, openapi.yaml)
//
// Errors are JSON {"error": "..."} with a status code that says whose fault it was; a known
// path asked with another method is 405 with Allow. openapi.yaml describes all of it, and
// package apitest checks the tests' exchanges against it.
package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/refreshd/refreshd/history"
)

// Status is the answer to GET /v1/status.
type Status struct {
	PID        int          `json:"pid"`
	Version    string       `json:"version"`
	Started    time.Time    `json:"started"`
	PlansDir   string       `json:"plans_dir"`
	Plans      []PlanStatus `json:"plans"`
	LoadErrors []LoadError  `json:"load_errors,omitempty"`
	LastReload time.Time    `json:"last_reload"`
	// StoreRecovered is set when the history store was found corrupt at start-up, moved
	// aside and replaced by an empty one: the history before that is in MovedTo.
	StoreRecovered *StoreRecovery `json:"store_recovered,omitempty"`
}

// StoreRecovery says where a corrupt history store was moved, when and why.
type StoreRecovery struct {
	MovedTo string    `json:"moved_to"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
}

// PlanStatus is one plan: its schedule, what runs now, and how the last run ended. The API
// owns this shape; the daemon fills it from the scheduler's state and the store.
type PlanStatus struct {
	Plan     string      `json:"plan"`
	File     string      `json:"file,omitempty"`
	Schedule string      `json:"schedule,omitempty"`
	Timezone string      `json:"timezone,omitempty"`
	Overlap  string      `json:"overlap,omitempty"` // skip or queue
	Next     time.Time   `json:"next,omitzero"`     // next scheduled time; zero for manual plans
	Running  string      `json:"running,omitempty"` // id of the running run
	Queued   string      `json:"queued,omitempty"`  // id of the run waiting behind it (overlap: queue)
	Last     *RunSummary `json:"last,omitempty"`
}

// RunSummary is the short form of a run.
type RunSummary struct {
	ID     string         `json:"id"`
	Status history.Status `json:"status"`
	End    time.Time      `json:"end,omitzero"`
	Reason string         `json:"reason,omitempty"`
}

// CacheTag is a watched cache tag: a ref a plan's skip_if, buildx_cache or verify_cache
// names, as refreshd last saw it in the registry.
type CacheTag struct {
	Ref  string `json:"ref"`
	Plan string `json:"plan,omitempty"` // the plan whose run last asked for it
	// Digest is the digest refreshd last saw; "" when the tag was absent.
	Digest  string    `json:"digest,omitempty"`
	Checked time.Time `json:"checked"` // refreshd's last look
	// Changed is when refreshd dated the tag's last change (its digest changed between two
	// looks); zero while it has seen one digest only.
	Changed time.Time `json:"changed,omitzero"`
	// PushedBy is the refreshd run that pushed the current digest; "" when it came from
	// outside refreshd (CI, a person) or refreshd did not see it pushed.
	PushedBy string `json:"pushed_by,omitempty"`
	// Within is the plan's freshness window for its cache tags (its skip_if tags
	// conditions' shortest), "" when it has none; Stale says the tag is older than that (or
	// its age is not known).
	Within string `json:"within,omitempty"`
	Stale  bool   `json:"stale"`
}

// LoadError is a plan file that did not load; its plan keeps its old version, if any.
type LoadError struct {
	File  string `json:"file"`
	Error string `json:"error"` // FILE:LINE:COL: message
}

// Triggered is the answer to POST /v1/plans/{plan}/run.
type Triggered struct {
	Run    string            `json:"run"`
	Plan   string            `json:"plan"`
	Queued bool              `json:"queued"`           // waits behind a running run (overlap: queue)
	Params map[string]string `json:"params,omitempty"` // every param of the run, with its value
}

// Reloaded is the answer to POST /v1/reload.
type Reloaded struct {
	Plans      int         `json:"plans"`
	LoadErrors []LoadError `json:"load_errors,omitempty"`
}

// Service is what the daemon offers through the socket.
type Service interface {
	Status(ctx context.Context) (*Status, error)
	// Trigger starts a run; params (NAME -> VALUE, nil for the defaults) are checked
	// against the plan first (ErrInvalid names the param at fault).
	Trigger(ctx context.Context, plan string, params map[string]string) (*Triggered, error)
	Runs(ctx context.Context, plan string, limit int) ([]*history.Run, error)
	RunRecord(ctx context.Context, id string) (*history.Run, error)
	// Logs writes the run's output lines to w; with follow it returns when the run has
	// ended (or ctx is done). step filters by step id or instance id.
	Logs(ctx context.Context, id, step string, follow bool, w LineWriter) error
	Cancel(ctx context.Context, id string) error
	Reload(ctx context.Context) (*Reloaded, error)
	// Pins returns the package pins runs published to constraints branches, newest first.
	Pins(ctx context.Context, q history.PinQuery) ([]history.Pin, error)
	// Caches returns the watched cache tags, by plan and ref.
	Caches(ctx context.Context) ([]CacheTag, error)
}

// LineWriter receives log lines; the server flushes each one to the client.
type LineWriter interface {
	WriteLine(line string) error
}

// Kinds of error a Service returns (through Errorf) to pick the HTTP status.
var (
	ErrNotFound = errors.New("not found")          // 404
	ErrConflict = errors.New("conflict")           // 409
	ErrInvalid  = errors.New("invalid request")    // 400
	ErrStopping = errors.New("daemon is stopping") // 503
)

// Errorf returns an error of kind (ErrNotFound, ErrConflict, ErrInvalid, ErrStopping)
// whose message is the formatted one alone: the status code carries the kind, so a client
// shows `no such plan "x"`, not `not found: no such plan "x"`. errors.Is finds both the
// kind and any %w-wrapped error.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// ExitCode is the process exit code for a finished run, the same for `run --local` and
// `run --wait`: 0 succeeded or skipped (a skip_if skip is the plan saying there was nothing
// to do, not a failure), 130 interrupted, 1 otherwise.
func ExitCode(s history.Status) int {
	switch s {
	case history.StatusSucceeded, history.StatusSkipped:
		return 0
	case history.StatusInterrupted:
		return 130
	default:
		return 1
	}
}
