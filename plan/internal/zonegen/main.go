// Command zonegen writes the time zones of Go's tzdata into plan/schema.json's timezone
// enum ($defs.timezone), the one list of zone names: editors offer it and the loader
// accepts exactly it (plan reads it from the embedded schema). Run by `go generate ./plan`
// after a Go upgrade; CI fails when that leaves a diff.
//
// Only the enum's array on its own line is rewritten, so the rest of the hand-written
// schema keeps its layout.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// enumLine is the line of schema.json holding $defs.timezone.
var enumLine = regexp.MustCompile(`(?m)^(\s*"timezone": \{"enum": )\[[^\]\n]*\]`)

func main() {
	if err := run("schema.json"); err != nil {
		fmt.Fprintln(os.Stderr, "zonegen:", err)
		os.Exit(1)
	}
}

func run(schema string) error {
	zones, err := goZones()
	if err != nil {
		return err
	}
	list, err := json.Marshal(zones)
	if err != nil {
		return err
	}
	// One space after each comma, as the rest of the file writes lists.
	list = bytes.ReplaceAll(list, []byte(`","`), []byte(`", "`))
	data, err := os.ReadFile(schema)
	if err != nil {
		return err
	}
	if n := len(enumLine.FindAllIndex(data, -1)); n != 1 {
		return fmt.Errorf("%s: %d lines hold a timezone enum, want 1", schema, n)
	}
	out := enumLine.ReplaceAllFunc(data, func(m []byte) []byte {
		return append(enumLine.FindSubmatch(m)[1], list...)
	})
	if bytes.Equal(out, data) {
		return nil
	}
	return os.WriteFile(schema, out, 0o644)
}

// goZones lists the zones of the Go toolchain's lib/time/zoneinfo.zip (what time/tzdata
// embeds), sorted.
func goZones() ([]string, error) {
	root := os.Getenv("GOROOT") // set by go generate
	if root == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return nil, fmt.Errorf("go env GOROOT: %w", err)
		}
		root = strings.TrimSpace(string(out))
	}
	zr, err := zip.OpenReader(filepath.Join(root, "lib", "time", "zoneinfo.zip"))
	if err != nil {
		return nil, fmt.Errorf("open Go's tzdata: %w", err)
	}
	defer zr.Close()
	var zones []string
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, "/") {
			zones = append(zones, f.Name)
		}
	}
	slices.Sort(zones)
	return zones, nil
}
