package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes. A command returns an error; exitCode (the one place that prints it) maps it:
// nil 0, a usage error 2, an *exitError its code, anything else 1.
const (
	exitSucceeded   = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInvalid     = 2 // run --local: the plan file is invalid
	exitInterrupted = 130
)

// usageError is a command invoked wrongly: a bad flag or value, missing arguments. With a
// flag set, the command's usage follows the message.
type usageError struct {
	fs  *flag.FlagSet
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf is a usage error without the usage text: a flag value the flag package
// accepted but the command does not.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// usage is a usage error that prints the command's usage after the message.
func usage(fs *flag.FlagSet, format string, args ...any) error {
	return &usageError{fs: fs, err: fmt.Errorf(format, args...)}
}

// helpRequest is --help: the usage on stderr and exit 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h *helpRequest) Error() string { return "help requested" }

// exitError ends the command with code. err, when not nil, is printed; nil means the
// command already said what happened (a run's status, load errors listed on stdout).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitWith ends the command with code, having printed what there was to say.
func exitWith(code int) error {
	if code == exitSucceeded {
		return nil
	}
	return &exitError{code: code}
}

// exitCode reports err on stderr, the way every command reports one, and returns the
// process exit code.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return exitSucceeded
	}
	var help *helpRequest
	if errors.As(err, &help) {
		printUsage(stderr, help.fs)
		return exitSucceeded
	}
	var ue *usageError
	if errors.As(err, &ue) {
		printError(stderr, err)
		if ue.fs != nil {
			fmt.Fprintln(stderr)
			printUsage(stderr, ue.fs)
		}
		return exitUsage
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(stderr, ee.err)
		}
		return ee.code
	}
	printError(stderr, err)
	return exitFailed
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.Usage()
	fs.SetOutput(io.Discard)
}

// printError writes err with "refreshd: " before it, so an operator (or a log grep) tells
// refreshd's messages from its steps' output. An error of several lines (a plan's
// FILE:LINE:COL list) gets the prefix on each.
func printError(stderr io.Writer, err error) {
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintf(stderr, "refreshd: %s\n", strings.TrimSuffix(line, "\n"))
	}
}
