package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
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
