// Command refreshd keeps CI build caches and dependency-constraint files fresh, unattended.
//
// One file per subcommand; main only dispatches.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand. Its run function parses its own flags from args and returns the
// process exit code.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"daemon", "run the scheduler and control socket (for systemd)", cmdDaemon},
		{"run", "run a plan now (through the daemon, or --local in the foreground)", cmdRun},
		{"validate", "check plan files and print their next run times", cmdValidate},
		{"plan", "dry run: show the expanded graph and the exact commands", cmdPlan},
		{"status", "show plans, next runs, running runs and load errors", cmdStatus},
		{"history", "list past runs", cmdHistory},
		{"logs", "show (or follow) the output of a run or one of its steps", cmdLogs},
		{"cancel", "cancel a running run", cmdCancel},
		{"reload", "make the daemon re-read its plans", cmdReload},
		{"schema", "print the JSON Schema of the plan format", cmdSchema},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			// SIGINT and SIGTERM cancel the context: commands stop their work cleanly
			// (killing step process groups) instead of dying mid-write.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "refreshd: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "refreshd keeps CI build caches and dependency-constraint files fresh.")
	fmt.Fprintln(w, "\nUsage: refreshd COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'refreshd COMMAND --help' for a command's flags.")
}

// printError writes err the way every command reports one: "refreshd: " and the error, so
// an operator (or a log grep) tells refreshd's messages from its steps' output. An error
// of several lines (a plan's FILE:LINE:COL list) gets the prefix on each.
func printError(stderr io.Writer, err error) {
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintf(stderr, "refreshd: %s\n", strings.TrimSuffix(line, "\n"))
	}
}
