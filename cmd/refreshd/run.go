package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
	"github.com/refreshd/refreshd/report"
)

// cmdRun is `refreshd run`: with --local it runs the plan file in the foreground; without,
// it asks the daemon to run it (runViaDaemon).
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if !hasLocalFlag(args) {
		return runViaDaemon(ctx, args, stdout)
	}
	fs := newFlagSet("run", "PLANFILE", "With --local: run a plan file in the foreground, without a daemon. Exit code 0 succeeded,\n1 failed, 2 plan or params invalid, 130 interrupted (Ctrl-C stops the steps' process groups\ncleanly).")
	fs.Bool("local", false, "run in the foreground without a daemon")
	state := fs.String("state", defaultLocalState(), "state `DIR`: history, logs, locks, workdirs")
	dryRun := fs.Bool("dry-run", false, "execute nothing: print each step's exact commands; publish computes its diff only")
	plainHTTP := plainHTTPFlag(fs)
	grace := killGraceFlag(fs)
	instance := fs.String("instance", "", "the `INSTANCE` to run, for a plan that declares instances")
	params := paramFlag{}
	fs.Var(params, "param", "`NAME=VALUE`: a run parameter the plan declares (repeatable); the others keep their defaults")
	staging := addStagingFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkKillGrace(*grace); err != nil {
		return err
	}
	staging.lister(ctx)
	plans, err := plan.LoadPlansWith(fs.Arg(0), staging.opts)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	p, err := pickInstance(plans, *instance)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	resolved, err := p.ResolveParams(params)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	g, err := plan.ExpandRun(p, resolved)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}

	// The live view needs a terminal on stdout; otherwise plain log lines go to stderr.
	var live *report.Live
	logOut := stderr
	level := slog.LevelInfo
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		width, _, _ := term.GetSize(int(f.Fd()))
		live = report.NewLive(stdout, width)
		logOut, level = live, slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	st, done, err := bootstrap(ctx, logger, *state, func(planName, repo string) string {
		if planName != p.Name {
			return ""
		}
		return executor.PublishToken(p, repo)
	})
	if err != nil {
		return err
	}
	defer done()
	cfg := engineConfig(st, logger, *plainHTTP, *grace)
	if live != nil {
		cfg.Observer = live
		live.Start(250 * time.Millisecond)
	}
	e, err := executor.New(cfg)
	if err != nil {
		return err
	}
	r, err := e.Run(ctx, g, executor.RunSpec{Trigger: history.TriggerManual, DryRun: *dryRun})
	if live != nil {
		live.Stop()
	}
	if err != nil && r == nil {
		return err
	}
	if err != nil {
		printError(stderr, err) // the run was recorded: its status below decides the exit code
	}
	fmt.Fprintf(stdout, "run %s: %s", r.ID, r.Status)
	if r.Reason != "" {
		fmt.Fprintf(stdout, " (%s)", r.Reason)
	}
	fmt.Fprintf(stdout, "\ndetails: refreshd logs --state %s %s\n", *state, r.ID)
	return exitWith(control.ExitCode(r.Status))
}

// hasLocalFlag reports whether args ask for --local, wherever it is among the flags.
func hasLocalFlag(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-local" || a == "--local" || a == "-local=true" || a == "--local=true":
			return true
		}
	}
	return false
}

// defaultLocalState is $XDG_STATE_HOME/refreshd, or ~/.local/state/refreshd.
func defaultLocalState() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "refreshd")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "refreshd")
	}
	return ".refreshd-state"
}
