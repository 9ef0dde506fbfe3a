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

// command is one subcommand. Its run function parses its own flags from args (parseFlags)
// and returns an error; dispatch prints it and maps it to the exit code (exitCode).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
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

// dispatch runs the command args name. `refreshd --help`, `refreshd help` and `refreshd
// help CMD` (the same as `refreshd CMD --help`) print usage on stdout and exit 0;
// `refreshd` alone and an unknown command print it on stderr and exit 2.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printCommands(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		if len(args) > 1 {
			break
		}
		printCommands(stdout)
		return exitSucceeded
	case "help":
		switch len(args) {
		case 1:
			printCommands(stdout)
			return exitSucceeded
		case 2:
			args = []string{args[1], "--help"}
		default:
			printError(stderr, fmt.Errorf("help takes at most one COMMAND; got %q", strings.Join(args[1:], " ")))
			return exitUsage
		}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			// SIGINT and SIGTERM cancel the context: commands stop their work cleanly
			// (killing step process groups) instead of dying mid-write.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return exitCode(stdout, stderr, c.run(ctx, args[1:], stdout, stderr))
		}
	}
	printError(stderr, fmt.Errorf("unknown command %q", args[0]))
	fmt.Fprintln(stderr)
	printCommands(stderr)
	return exitUsage
}

func printCommands(w io.Writer) {
	fmt.Fprintln(w, "refreshd keeps CI build caches and dependency-constraint files fresh.")
	fmt.Fprintln(w, "\nUsage: refreshd COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'refreshd help COMMAND' (or 'refreshd COMMAND --help') for a command's flags.")
}
