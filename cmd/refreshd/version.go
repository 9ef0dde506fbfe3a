package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3" (see the Makefile);
// without it the module version and VCS revision from the build info are shown.
var version string

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", "Print the version, Go version and VCS revision.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

// versionString is the version line of `refreshd version` and `refreshd status`:
// "refreshd v1.2.3 go1.26.0 REVISION[+dirty]".
func versionString() string {
	b := buildInfo()
	out := "refreshd " + b.Version
	if b.GoVersion != "" {
		out += " " + b.GoVersion
	}
	if b.Revision != "" {
		out += " " + b.Revision
	}
	return out
}

// build is what is known of this binary's build.
type build struct {
	Version   string // -X main.version, else the module version, else "(devel)"
	GoVersion string
	Revision  string // VCS revision, "+dirty" when the tree was modified
}

func buildInfo() build {
	b := build{Version: version}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "(devel)"
		}
		return b
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	b.GoVersion = info.GoVersion
	modified := ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if b.Revision != "" {
		b.Revision += modified
	}
	return b
}
