// Package history is refreshd's record of what happened: runs, step instances, attempts,
// digests pushed and commits made, in one embedded store file that survives restarts and crashes.
package history

import "time"

// Trigger says why a run started.
type Trigger string

const (
	TriggerSchedule Trigger = "schedule"
	TriggerManual   Trigger = "manual"
	TriggerCatchUp  Trigger = "catch-up"
)

// Status of a run or a step instance.
type Status string

const (
	StatusWaiting     Status = "waiting" // steps only
	StatusRunning     Status = "running"
	StatusSucceeded   Status = "succeeded"
	StatusFailed      Status = "failed"
	StatusInterrupted Status = "interrupted" // cancelled, shut down, or found running after a crash
	StatusSkipped     Status = "skipped"     // a need failed, skip_if held, or overlap skipped the trigger
)

// Run is one execution of a plan.
type Run struct {
	ID        string    `json:"id"`
	Plan      string    `json:"plan"`
	Trigger   Trigger   `json:"trigger"`
	Scheduled time.Time `json:"scheduled,omitzero"` // the cron time it was started for
	Start     time.Time `json:"start"`
	End       time.Time `json:"end,omitzero"`
	Status    Status    `json:"status"`
	Reason    string    `json:"reason,omitempty"` // why it failed, was skipped or interrupted
	Warnings  []string  `json:"warnings,omitempty"`
	Steps     []Step    `json:"steps,omitempty"`
	DryRun    bool      `json:"dry_run,omitempty"` // nothing was executed
	// Process is the group of the process the run itself last started outside any step
	// (skip_if's git), recorded like an attempt's for the recovery after a kill -9.
	Process *ProcessGroup `json:"process,omitempty"`
	// Source is what the run's checkout step fetched and built from; nil without one.
	Source *Source `json:"source,omitempty"`
	// Params are the run's parameters, each with its value (given, or the plan's default).
	Params map[string]string `json:"params,omitempty"`
	// Vars are the values steps defined at run time (outputs:), in the order they came.
	Vars []RunVar `json:"vars,omitempty"`
	// Freshness are the skip_if decisions of the run, held or not, each with why.
	Freshness []Freshness `json:"freshness,omitempty"`
	// Summary counts the steps of a run read as a header (Store.Heads, RunPart), whose
	// Steps are left out or are one window of them; nil on a whole record. Never stored
	// with the run: the store keeps it beside.
	Summary *StepSummary `json:"step_summary,omitempty"`
}

// Freshness is one skip_if decision: whether the condition held (what it watches was
// fresh, so the run or the step was skipped) and why (the stale or missing tags, the
// branch's or image's age, or why it could not tell).
type Freshness struct {
	Pos   string `json:"pos"`            // the condition's place in the plan
	Step  string `json:"step,omitempty"` // its step; "" for the plan's (the whole run)
	Fresh bool   `json:"fresh"`
	Why   string `json:"why"`
}

// ProcessGroup identifies a process group across pid reuse (see Attempt.PGID).
type ProcessGroup struct {
	PGID       int    `json:"pgid"`
	StartTicks uint64 `json:"start_ticks"`
	BootID     string `json:"boot_id"`
}

// Source is the commit a checkout step brought the working tree to.
type Source struct {
	Step     string `json:"step"`
	Repo     string `json:"repo"` // without credentials
	Ref      string `json:"ref"`
	Commit   string `json:"commit"`
	Previous string `json:"previous,omitempty"` // the tree's commit before, "" when new
	Changed  bool   `json:"changed"`            // the tree moved to another commit
	Path     string `json:"path"`
}

// RunVar is one var a step of the run defined from what it read at run time.
type RunVar struct {
	Name   string   `json:"name"`
	Step   string   `json:"step"`             // the step that defined it
	Value  string   `json:"value,omitempty"`  // a string var
	Values []string `json:"values,omitempty"` // a list var
	List   bool     `json:"list,omitempty"`
}

// Step is one step instance of a run.
type Step struct {
	Instance string    `json:"instance"`
	Status   Status    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	Attempts []Attempt `json:"attempts,omitempty"`
	Node     string    `json:"node,omitempty"` // the builder node that really built (buildx.build.ref)
	Caches   []Cache   `json:"caches,omitempty"`
	Publish  *Publish  `json:"publish,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	// When is the step's when: condition if it is a cleanup step ("failure", "always"), and
	// After what it ran after: "build failed", "the run ended: cancelled by refreshd cancel".
	When  string `json:"when,omitempty"`
	After string `json:"after,omitempty"`
	// Tests is the outcome of a test gate (a run step with report: junit:), from the report
	// its last attempt wrote; nil for other steps, or when no report could be read.
	Tests *Tests `json:"tests,omitempty"`
}

// Tests is what a test gate's JUnit report says.
type Tests struct {
	Report   string   `json:"report"` // the report's path
	Total    int      `json:"total"`
	Failures int      `json:"failures"`
	Errors   int      `json:"errors"`
	Skipped  int      `json:"skipped"`
	Failed   []string `json:"failed,omitempty"` // ids of failing tests, at most 100
}

// Attempt is one try of a step instance.
type Attempt struct {
	N        int       `json:"n"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	ExitCode int       `json:"exit_code"`        // -1 when killed by a signal or not started
	Signal   string    `json:"signal,omitempty"` // e.g. "killed"
	Error    string    `json:"error,omitempty"`
	Log      string    `json:"log,omitempty"` // path of the attempt's log file
	// Interrupted: the attempt was still running when refreshd stopped without recording
	// its end (crash, kill -9, power loss); the next start marked it.
	Interrupted bool `json:"interrupted,omitempty"`

	// The process group of the attempt's current process (its argv, git, docker buildx or
	// buildctl), recorded as soon as it starts, so
	// that a refreshd started after a crash or kill -9 can stop what its predecessor left
	// running (statedir.Dir.Recover). StartTicks (field 22 of /proc/PGID/stat) and
	// BootID (/proc/sys/kernel/random/boot_id) tell the group's leader from a later process
	// that reused its pid. Zero when the attempt ran no process.
	PGID       int    `json:"pgid,omitempty"`
	StartTicks uint64 `json:"start_ticks,omitempty"`
	BootID     string `json:"boot_id,omitempty"`
}

// Cache is one registry cache ref checked by a run: its digest before and after.
type Cache struct {
	Ref      string `json:"ref"`
	Before   string `json:"before,omitempty"` // digest before the build, "" if absent
	After    string `json:"after,omitempty"`  // digest after, "" if missing
	Changed  bool   `json:"changed"`
	Verified bool   `json:"verified"`
}

// Publish is what a publish_constraints step did.
type Publish struct {
	Repo   string `json:"repo"` // with any credentials removed
	Branch string `json:"branch"`
	Commit string `json:"commit,omitempty"` // "" when unchanged or dry run
	// Pushing is the last commit handed to git push, recorded before the push starts: after
	// a kill -9 mid-publish the next start checks whether it reached the branch and records
	// the answer in Reconciled (and Commit when it did).
	Pushing      string          `json:"pushing,omitempty"`
	Reconciled   string          `json:"reconciled,omitempty"`
	Changed      bool            `json:"changed"`
	Summary      string          `json:"summary"` // "14 upgraded, 2 added, 1 removed"
	Changes      []PackageChange `json:"changes,omitempty"`
	PushAttempts int             `json:"push_attempts"`
	// Outside are the commits others pushed to the branch since refreshd last saw it that
	// changed a published file's pins; OutsideNote says when that look was cut short.
	Outside     []OutsideCommit `json:"outside,omitempty"`
	OutsideNote string          `json:"outside_note,omitempty"`
}

// OutsideCommit is a commit made outside refreshd on a constraints branch, as a publish
// found it: its author is the committer's text (bounded, escaped wherever shown).
type OutsideCommit struct {
	Commit  string          `json:"commit"`
	Author  string          `json:"author"`
	At      time.Time       `json:"at"` // the committer's date
	Changes []PackageChange `json:"changes"`
}

// PackageChange is one package pin that changed in one constraints file.
type PackageChange struct {
	File    string `json:"file"`
	Package string `json:"package"`
	Old     string `json:"old,omitempty"` // "" when added
	New     string `json:"new,omitempty"` // "" when removed
}

// CacheTags counts the distinct cache refs the run checked in the registry, by their final
// state. A ref recorded by several steps (the build that pushed it, then the verify step)
// counts once, as the last of them in the run's (graph) order saw it: a tag the build pushed
// and a later check found gone is missing.
func (r *Run) CacheTags() (verified, missing int) {
	final := map[string]bool{}
	for _, s := range r.Steps {
		for _, c := range s.Caches {
			final[c.Ref] = c.Verified
		}
	}
	for _, ok := range final {
		if ok {
			verified++
		} else {
			missing++
		}
	}
	return verified, missing
}

// NodeDown is a node of a builder's pool that a run found down and went on without, its
// platform building on the rest of the pool. The executor reports it to its observer; the
// daemon counts it (refreshd_pool_nodes_down_total) and the run's warnings name it.
type NodeDown struct {
	Builder, Node, Platform, Endpoint string
	Found                             NodeFound
	Status                            string // as buildx showed it, or the failed build's last line
}

// NodeFound is where a run found a pool node down.
type NodeFound string

// The places a run finds a pool node down: the values of NodeDown.Found and of the found
// label of refreshd_pool_nodes_down_total.
const (
	NodeFoundAtProvisioning NodeFound = "provisioning" // not running when the run provisioned the builder
	NodeFoundInBuild        NodeFound = "build"        // a build failed and the node no longer showed running
)

// NodeFounds lists every NodeFound.
func NodeFounds() []NodeFound { return []NodeFound{NodeFoundAtProvisioning, NodeFoundInBuild} }
