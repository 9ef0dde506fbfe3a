package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/statedir"
)

// socketFlag registers --socket, defaulting to $REFRESHD_SOCKET or the systemd unit's path.
func socketFlag(fs *flagSet) *string {
	def := os.Getenv("REFRESHD_SOCKET")
	if def == "" {
		def = control.DefaultSocket
	}
	return fs.String("socket", def, "control socket `PATH` of the daemon (env REFRESHD_SOCKET)")
}

// socketNamed reports whether the operator named the socket (--socket, or REFRESHD_SOCKET):
// then no daemon there is an error (exit 3), never a silent read of some state directory.
func socketNamed(fs *flagSet) bool {
	named := os.Getenv("REFRESHD_SOCKET") != ""
	fs.Visit(func(f *flag.Flag) { named = named || f.Name == "socket" })
	return named
}

// readRuns is where history and logs read runs: a --state named without --socket is read
// directly (its store, even with REFRESHD_SOCKET set); a named socket (--socket, REFRESHD_SOCKET) is asked and nothing
// else; with neither, the daemon on the default socket is asked and, when none listens
// there, the default state directory's store is read, which is said on stderr. It returns
// where the answer came from, for the messages that name it.
func readRuns(fs *flagSet, socket string, stateDir func() string, stderr io.Writer,
	fromDaemon func() error, fromStore func(state string) error) (where string, err error) {
	named := func(name string) bool {
		found := false
		fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
		return found
	}
	if named("state") && !named("socket") { // a flag beats REFRESHD_SOCKET
		state := stateDir()
		return "the store in " + state, fromStore(state)
	}
	err = fromDaemon()
	if !errors.Is(err, control.ErrNoDaemon) || socketNamed(fs) {
		return "the daemon on " + socket, err
	}
	state := stateDir()
	fmt.Fprintf(stderr, "refreshd: no daemon on %s; reading the store in %s\n", socket, state)
	return "the store in " + state, fromStore(state)
}

// systemState is the state directory of the systemd unit's daemon (StateDirectory=).
const systemState = "/var/lib/refreshd"

// readStateFlag registers --state for the commands that read the history themselves when
// no daemon listens (history, logs). Unset, it is the system daemon's state directory when
// its history is readable (the operator is in the daemon's group), else the user's own, as
// run --local writes it. The returned function gives the directory to read.
func readStateFlag(fs *flagSet) func() string {
	state := fs.String("state", "", "state `DIR`, read when no daemon listens on --socket (default: "+systemState+
		" when its history is readable, else "+defaultLocalState()+")")
	return func() string {
		if *state != "" {
			return *state
		}
		return readableState(systemState, defaultLocalState())
	}
}

// readableState is system if its history can be opened for reading, else local.
func readableState(system, local string) string {
	f, err := os.Open(statedir.Dir{Root: system}.History())
	if err != nil {
		return local
	}
	f.Close()
	return system
}

// outputFlag registers -o text|json. A value other than those is a flag error, reported
// by the flag package with the usage and exit code 2 like any other bad flag.
func outputFlag(fs *flagSet) *string {
	out := "text"
	fs.Func("o", "output `FORMAT`: text or json (default text)", func(s string) error {
		if s != "text" && s != "json" {
			return errors.New("want text or json")
		}
		out = s
		return nil
	})
	return &out
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// runViaDaemon is `refreshd run PLAN [--wait]` without --local: it asks the daemon to start
// the plan now, prints the run id, and with --wait follows its output to the end and exits
// like run --local would (0 succeeded, 1 failed, 130 interrupted).
func runViaDaemon(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("run", "PLAN", "Ask the daemon to run PLAN now and print the run id. PLAN is a plan's name, or PLAN/INSTANCE\nfor an instance of a plan that declares instances (refreshd status lists them). --param sets\na run parameter the plan declares; the daemon checks it before the run starts (a refused one\nexits 2). --wait follows the run to the end and exits 0 succeeded, 1 failed, 130 interrupted.\nWith --local, PLAN is a plan file run in the foreground (refreshd run --local --help).")
	socket := socketFlag(fs)
	out := outputFlag(fs)
	wait := fs.Bool("wait", false, "follow the run to its end; exit 0 if it succeeded, 1 if it failed, 130 if interrupted")
	fs.Bool("local", false, "run in the foreground without a daemon")
	params := paramFlag{}
	fs.Var(params, "param", "`NAME=VALUE`: a run parameter the plan declares (repeatable); the others keep their defaults")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c := control.NewClient(*socket)
	t, err := c.TriggerWith(ctx, fs.Arg(0), params)
	if err != nil {
		return err
	}
	if *out == "json" && !*wait {
		printJSON(stdout, t)
		return nil
	}
	if *out == "text" {
		if t.Queued {
			fmt.Fprintf(stdout, "%s (queued behind the running run)\n", t.Run)
		} else {
			fmt.Fprintln(stdout, t.Run)
		}
	}
	if !*wait {
		return nil
	}
	err = c.Logs(ctx, t.Run, "", true, func(line string) error {
		if *out == "text" {
			fmt.Fprintln(stdout, line)
		}
		return nil
	})
	if ctx.Err() != nil {
		return &exitError{code: exitInterrupted, err: fmt.Errorf("stopped following %s; the run goes on (refreshd cancel %s)", t.Run, t.Run)}
	}
	if err != nil {
		return err
	}
	r, err := c.Run(ctx, t.Run)
	if err != nil {
		return err
	}
	if *out == "json" {
		printJSON(stdout, r)
	} else {
		fmt.Fprintf(stdout, "run %s %s", r.ID, r.Status)
		if r.Reason != "" {
			fmt.Fprintf(stdout, ": %s", r.Reason)
		}
		fmt.Fprintln(stdout)
	}
	return exitWith(control.ExitCode(r.Status))
}
