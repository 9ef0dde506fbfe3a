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
	fs := newFlagSet("version", "Usage: refreshd version\n\nPrint the version, Go version and VCS revision.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usage(fs, "version takes no arguments")
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "(devel)"
		}
		return "refreshd " + v
	}
	if v == "" {
		v = info.Main.Version
	}
	rev, modified := "", ""
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	out := fmt.Sprintf("refreshd %s %s", v, info.GoVersion)
	if rev != "" {
		out += " " + rev + modified
	}
	return out
}
