package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/testkit"
	"github.com/refreshd/refreshd/statedir"
)

// refreshd history --package: the constraint history of a package, from a state directory's
// store, newest first, with the branch, the change, the commit, the run and the sources'
// commit; -o json gives the same records; a prefix finds the family; a PLAN is refused.
func TestHistoryPackage(t *testing.T) {
	state := t.TempDir()
	s, err := history.Open(statedir.Dir{Root: state}.History())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	for i, ch := range []history.PackageChange{
		{File: "constraints-3.12.txt", Package: "httpx", Old: "0.27.2", New: "0.28.1"},
		{File: "constraints-3.12.txt", Package: "httpcore", Old: "1.0.6", New: "1.0.7"},
	} {
		r := &history.Run{ID: "demo-" + ch.Package, Plan: "demo/main", Start: at.Add(time.Duration(i) * time.Hour), Status: history.StatusSucceeded,
			Source: &history.Source{Commit: "5ca1ab1e5ca1ab1e5ca1ab1e"},
			Steps: []history.Step{{Instance: "publish", End: at.Add(time.Duration(i) * time.Hour), Publish: &history.Publish{Branch: "constraints-main",
				Commit: "c0ffee00c0ffee00c0ffee00", Changed: true, Changes: []history.PackageChange{ch}}}}}
		if err := s.SaveRun(r); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	var out, errb bytes.Buffer
	if code := dispatch([]string{"history", "--state", state, "--package", "HTTPX"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "constraints-main") || !strings.Contains(lines[1], "0.27.2 -> 0.28.1") ||
		!strings.Contains(lines[1], "c0ffee00c0ff") || !strings.Contains(lines[1], "demo-httpx") || !strings.Contains(lines[1], "5ca1ab1e5ca1") {
		t.Errorf("history --package HTTPX:\n%s", out.String())
	}

	out.Reset()
	if code := dispatch([]string{"history", "--state", state, "--package", "http", "-o", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var pins []history.Pin
	if err := json.Unmarshal(out.Bytes(), &pins); err != nil || len(pins) != 2 || pins[0].Package != "httpcore" || pins[1].Package != "httpx" {
		t.Errorf("history --package http -o json: %v\n%s", err, out.String())
	}

	out.Reset()
	if code := dispatch([]string{"history", "--state", state, "--package", "nosuch"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no published pins match (read from the store in "+state+")") {
		t.Errorf("history --package nosuch: exit %d\n%s", code, out.String())
	}
	if code := dispatch([]string{"history", "--state", state, "--package", "httpx", "demo/main"}, &out, &errb); code != 2 {
		t.Errorf("history --package with a PLAN: exit %d, want 2", code)
	}
}

// Someone else pushes a pin change to the constraints branch between two publishes of
// run --local (over git daemon): refreshd history --package shows it as made outside
// refreshd, with its commit and author, beside the runs' own changes; -o json marks it.
func TestHistoryPackageOutsideRefreshd(t *testing.T) {
	w := newPublishWorldTo(t, overDaemon)
	runOnce := func() {
		t.Helper()
		if err := w.start(w.plan).Wait(); err != nil {
			t.Fatalf("run --local: %v", err)
		}
	}
	runOnce()
	other := t.TempDir()
	testkit.Git(t, other, "clone", "--quiet", "--branch", "constraints", w.remote, ".")
	data, err := os.ReadFile(filepath.Join(other, "constraints.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "constraints.txt"), append(data, "httpx==0.28.1\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Git(t, other, "commit", "--quiet", "-am", "pin httpx", "--author", `Jane "&" Human <jane@example.com>`)
	testkit.Git(t, other, "push", "--quiet", "origin", "HEAD:refs/heads/constraints")
	human := testkit.Git(t, other, "rev-parse", "HEAD")
	runOnce() // regenerates the file without httpx: refreshd removes it

	var out, errb bytes.Buffer
	if code := dispatch([]string{"history", "--state", w.state, "--package", "httpx"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "removed 0.28.1") || !strings.Contains(lines[1], "pub-") ||
		!strings.Contains(lines[2], "added 0.28.1") || !strings.Contains(lines[2], human[:12]) ||
		!strings.Contains(lines[2], `outside refreshd: Jane "&" Human <jane@example.com>`) {
		t.Errorf("history --package httpx: want the run's removal, then the outside addition by its commit %s:\n%s", human, out.String())
	}
	out.Reset()
	if code := dispatch([]string{"history", "--state", w.state, "--package", "httpx", "-o", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var pins []history.Pin
	if err := json.Unmarshal(out.Bytes(), &pins); err != nil || len(pins) != 2 || pins[0].Outside ||
		!pins[1].Outside || pins[1].Commit != human || pins[1].Run != "" || pins[1].Branch != "constraints" {
		t.Errorf("history --package httpx -o json: %v\n%s", err, out.String())
	}
	// Every other pin is refreshd's own: its own commits are never taken for outside ones.
	out.Reset()
	if code := dispatch([]string{"history", "--state", w.state, "--package", "pkg", "-o", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var own []history.Pin
	if err := json.Unmarshal(out.Bytes(), &own); err != nil || len(own) != 2 || own[0].Outside || own[1].Outside {
		t.Errorf("history --package pkg: want the runs' two pins of pkg, none from outside: %v\n%s", err, out.String())
	}
}
