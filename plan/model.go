// Package plan is refreshd's plan model: strict YAML decoding with positions, defaults,
// validation, templates, and the expansion of matrices into a graph of concrete step runs.
//
// A Plan is what an operator wrote, checked and with defaults applied. A Graph is what a run
// executes: every matrix expanded, every template rendered into exact argv elements.
// The package does no I/O beyond reading plan files.
package plan

import (
	"fmt"
	"regexp"
	"time"

	"github.com/robfig/cron/v3"
)

// Pos is a place in a plan file. Every error about a plan names one.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Overlap says what a trigger does while the same plan is already running. A running refresh
// is never cancelled by a trigger.
type Overlap string

const (
	OverlapSkip  Overlap = "skip"  // the trigger is recorded as skipped
	OverlapQueue Overlap = "queue" // at most one trigger waits; later ones are skipped
)

// Emulation says what a builder may do when a node would build a platform it does not run
// natively (QEMU emulation is over 10x slower, so for a cache refresh it is better to fail than
// to emulate).
type Emulation string

const (
	EmulationForbid Emulation = "forbid"
	EmulationWarn   Emulation = "warn"
	EmulationAllow  Emulation = "allow"
)

// Plan is one refresh, as loaded and validated from a YAML file.
type Plan struct {
	Pos  Pos    // where the document starts
	File string // the file it was loaded from
	// Name is what runs, schedules, history, metrics and the CLI know the plan by: the plan:
	// name, or "PLAN/INSTANCE" for one instance of a plan that declares instances.
	Name string
	// Base is the plan: name as written; Instance is the instance's name ("" without
	// instances). Name is Base, or Base + "/" + Instance.
	Base     string
	Instance string
	// Params are the run parameters, in file order: a run may set each (refreshd run
	// --param NAME=VALUE); a scheduled run uses their defaults.
	Params   []Param
	Schedule string         // robfig/cron v3 spec; empty means manual runs only
	Timezone string         // IANA name; default UTC
	Location *time.Location // Timezone, loaded
	Overlap  Overlap        // default skip
	CatchUp  bool
	Timeout  time.Duration // whole run; 0 means none
	// Concurrency caps the step instances running at once in one run; 0 means no cap.
	Concurrency int
	// KillGrace is the time between SIGTERM and SIGKILL for a step's process group. Zero
	// means the plan sets none: the executor then uses the daemon's --kill-grace, else 30s.
	KillGrace time.Duration
	Workdir   string // absolute; default the state directory's work/<plan>
	Env       map[string]string
	Secrets   map[string]Secret
	Vars      map[string]Var
	Builders  map[string]*Builder // declared in the plan or in a shared file and referenced
	SkipIf    []SkipCondition
	// Warnings are problems that do not make the plan invalid but make part of it useless,
	// like a skip_if condition that can never be checked; refreshd validate prints them.
	Warnings ErrorList
	Notify   []Webhook
	KeepRuns int // history retention per plan; default 50
	Steps    []*Step
	// Derived says how instances_from derived instances from a remote's branches (nil
	// without instances_from): shared by every instance of the file.
	Derived *DerivedInstances
	// Overrides are the values an overlay file or a --var set (plan/overlay.go), in the
	// order applied; refreshd plan shows them.
	Overrides []Override

	namePos Pos           // where the name is, for duplicate names in a directory
	sched   cron.Schedule // Schedule, parsed; nil for manual runs only
}

// Secret is a reference to a value read at run time; plans never hold secret values.
type Secret struct {
	Pos        Pos
	File       string // absolute path
	Env        string // name of an environment variable of the daemon
	Credential string // name of a systemd credential of the unit: $CREDENTIALS_DIRECTORY/NAME
}

// Var is a plan variable: a string or a list of strings.
type Var struct {
	Pos    Pos
	List   []string
	Scalar string
	IsList bool
}

// Builder is a buildx builder the plan needs to exist with exactly these nodes.
type Builder struct {
	Pos       Pos
	Name      string
	Driver    string // docker-container | remote | kubernetes
	Emulation Emulation
	Nodes     []Node
}

// Node is one node of a builder, pinned to its native platform.
type Node struct {
	Pos        Pos
	Name       string
	Endpoint   string
	Platform   string // os/arch[/variant]
	DriverOpts map[string]string
	// MaxParallel is how many buildx_cache builds the node runs at once (1..100, default 1).
	MaxParallel int
}

// SkipCondition skips a whole run (the plan's skip_if), or one step and what needs it (a
// step's), when the project's own CI refreshed recently. Exactly one of Branch, Image and
// Tags is set.
type SkipCondition struct {
	Pos Pos
	// Step is the step whose skip_if this is; "" for the plan's.
	Step   string
	Branch *BranchFreshness
	Image  *ImageFreshness
	Tags   *TagsFreshness
}

// TagsFreshness: skip when every one of Refs was pushed within Within, as refreshd saw it:
// the digest it recorded for the tag changed, between its two last looks, no longer than
// Within ago. The only signal that works for BuildKit registry-cache tags, whose manifests
// carry no created time, pushed by someone else.
type TagsFreshness struct {
	Refs   []string // concrete image refs with a tag: the refs: templates rendered per matrix combination
	Within time.Duration
	// After are the steps whose run-time values the refs use (the Python versions read
	// from the checkout). Empty: Refs are known at load and the condition is decided before
	// the run starts. Otherwise Refs is empty, and the condition is decided as soon as these
	// steps succeeded (Graph.SkipTagRefs), before anything expanded from their values starts.
	After []string

	tmpls []string // refs: as written
	pos   []Pos
	axes  []Axis
}

// BranchFreshness: skip when the branch's last commit is newer than Within.
type BranchFreshness struct {
	Repo   string
	Branch string
	Within time.Duration
}

// ImageFreshness: skip when the image config's `created` is newer than Within.
type ImageFreshness struct {
	Ref    string
	Within time.Duration
}

// Webhook is a notification target for a plan's failures and recoveries.
type Webhook struct {
	Pos    Pos
	URL    string // may reference a secret: {{ .secrets.SLACK_URL }}
	Format string // json | slack
	On     []string
}

// When says under which outcome of the run a step runs.
type When string

const (
	// WhenSuccess: the step runs when every step it needs succeeded (the default).
	WhenSuccess When = "success"
	// WhenFailure: the step runs once its needs have ended, only if one of them did not
	// succeed (with no needs: once every non-cleanup step ended, only if one did not
	// succeed), and also after the run was cancelled, interrupted or timed out.
	WhenFailure When = "failure"
	// WhenAlways: the step runs once its needs have ended (with no needs: once every
	// non-cleanup step ended), whatever their outcome, also after a cancel or a timeout.
	WhenAlways When = "always"
)

// Cleanup reports whether steps with this When run after failures and cancellations.
func (w When) Cleanup() bool { return w == WhenFailure || w == WhenAlways }

// Step is one step of a plan as written; a matrix step stands for several instances.
type Step struct {
	Pos   Pos
	ID    string
	Needs []string
	// Matrix axes in the order written; expansion iterates the first axis slowest.
	Matrix      []Axis
	Concurrency int           // instances of this step at once (per node for buildx_cache); 0 means no cap
	Timeout     time.Duration // per attempt; 0 means the plan's
	Retry       Retry
	Workdir     string
	Env         map[string]string
	// Builder names a builder this step uses (a run step driving buildx itself, like breeze
	// --builder). The builder is provisioned and checked before the step and locked while it runs.
	Builder string
	// When says under which outcome of the run the step runs: WhenSuccess (the default: its
	// needs all succeeded), WhenFailure or WhenAlways (cleanup and notification steps).
	When When
	// Secrets are the plan secrets this run step's environment holds, by name. A step sees
	// no other secret; built-in actions name theirs through their own keys (token:).
	Secrets []string

	// Exactly one action (plan/action.go), as written. The built-in actions other code
	// reads have their field here; every action, these too, is also in actions.
	Run                []string // argv templates, one element each
	BuildxCache        *BuildxCache
	PublishConstraints *PublishConstraints
	Checkout           *Checkout

	// SkipIf skips this step, and the steps that need it, when a condition holds (the
	// cache it refreshes is fresh): the rest of the run goes on. Decided like the plan's
	// skip_if: before the run, or as soon as the steps whose values its refs use succeeded.
	SkipIf []SkipCondition

	// Expect are checks made before the step starts, once its templates are rendered (with
	// run-time values too): a value read from the tree that must match what the plan or
	// instance says. A check that does not hold fails the step without running it, naming
	// both values; what needs the step never runs (nothing is published).
	Expect []Expect

	// Report, on a run step, is the test report it writes: the step is a test gate whose
	// record carries the tests' outcome and whose failure names the failing tests.
	Report *Report

	// Outputs, if set, makes the step define vars from what it read at run time (JSON on
	// stdout or in a file it writes): steps using those vars expand once it has succeeded.
	Outputs *Outputs

	actions  []stepAction   // the action keys the step names, decoded: one in a valid plan
	at       map[string]Pos // places of templated values ("run.2", "buildx_cache.ref", ...)
	needsPos []Pos
	// waits are the steps whose run-time vars this step uses (sorted); deferred says it
	// expands at run time: it uses such vars or needs a step that is deferred.
	waits    []string
	deferred bool
}

// Axis is one matrix dimension: a name and its values (literal, or a list variable).
type Axis struct {
	Pos    Pos
	Name   string
	Values []string

	ref    string // the list var named by "{{ .vars.NAME }}", resolved into Values
	refPos Pos
}

// Retry is a step's retry policy.
type Retry struct {
	Attempts   int           // total attempts, default 1
	Backoff    time.Duration // first delay, default 10s
	MaxBackoff time.Duration // cap, default 5m
	Jitter     float64       // fraction of the delay, 0..1, default 0.2
	// RetryOn: an attempt is retried only if its exit code is listed or its output matches a
	// pattern. Empty means the default transient patterns (TransientPatterns).
	ExitCodes []int
	Output    []*regexp.Regexp
}

// Report is the test report a run step writes (a test gate): JUnit XML, as pytest
// --junitxml, JUnit and most test runners write it.
type Report struct {
	JUnit string // template; a path relative to the step's workdir
}

// Expect is one check of a step: That, rendered, must equal Equals, rendered.
type Expect struct {
	Pos    Pos
	That   string // template: usually a value a step read from the tree
	Equals string // template: what the plan or instance says it must be
	Why    string // what the check guards, for the failure's message
}
