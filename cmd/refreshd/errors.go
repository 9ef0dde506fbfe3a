package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/refreshd/refreshd/daemon/control"
)

// Exit codes, one per kind of failure, the same in every command (docs/operations.md's table):
//
//	0    succeeded (a run that succeeded, or that skip_if skipped: nothing to do)
//	1    failed: a run failed; a reload or status reports a plan that did not load; the
//	     daemon failed the request
//	2    invalid: a bad command, flag or argument; a plan file missing or invalid; a param
//	     the plan refuses; no such plan, run or step
//	3    the daemon cannot be reached: no socket, permission denied, no answer, stopping
//	4    refused by the daemon's state: the plan is already running, the run has ended
//	130  interrupted: Ctrl-C, or the run was cancelled or shut down
//
// A command returns an error; exitCode (the one place that prints it) maps it.
const (
	exitSucceeded   = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInvalid     = exitUsage // a plan, param, plan name, run or step that is not valid
	exitUnreachable = 3
	exitRefused     = 4
	exitInterrupted = 130
)

// usageError is a command invoked wrongly: a bad flag or value, missing arguments. With a
// flag set, the command's usage follows the message.
type usageError struct {
	fs  *flagSet
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
func usage(fs *flagSet, format string, args ...any) error {
	return &usageError{fs: fs, err: fmt.Errorf(format, args...)}
}

// helpRequest is --help (or `refreshd help CMD`): the usage on stdout and exit 0.
type helpRequest struct{ fs *flagSet }

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

// exitCode reports err on stderr, the way every command reports one (the usage a help
// request asked for goes to stdout), and returns the process exit code.
func exitCode(stdout, stderr io.Writer, err error) int {
	if err == nil {
		return exitSucceeded
	}
	var help *helpRequest
	if errors.As(err, &help) {
		writeUsage(stdout, help.fs)
		return exitSucceeded
	}
	var ue *usageError
	if errors.As(err, &ue) {
		printError(stderr, err)
		if ue.fs != nil {
			fmt.Fprintln(stderr)
			writeUsage(stderr, ue.fs)
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
	return failureCode(err)
}

// failureCode is the exit code of an error a command did not classify itself: the
// daemon's answer says which kind it is.
func failureCode(err error) int {
	var api *control.APIError
	switch {
	case errors.Is(err, control.ErrUnreachable):
		return exitUnreachable
	case errors.As(err, &api):
		switch api.Code {
		case http.StatusBadRequest, http.StatusNotFound:
			return exitInvalid
		case http.StatusConflict:
			return exitRefused
		case http.StatusServiceUnavailable:
			return exitUnreachable
		}
	}
	return exitFailed
}

// printError writes err with "refreshd: " before it, so an operator (or a log grep) tells
// refreshd's messages from its steps' output. An error of several lines (a plan's
// FILE:LINE:COL list) gets the prefix on each.
func printError(stderr io.Writer, err error) {
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintf(stderr, "refreshd: %s\n", strings.TrimSuffix(line, "\n"))
	}
}
