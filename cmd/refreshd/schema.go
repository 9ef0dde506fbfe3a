package main

import (
	"context"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/plan"
)

// cmdSchema prints the JSON Schema of the plan format, for editors (yaml-language-server)
// and for checking plans with any JSON Schema validator.
func cmdSchema(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("schema", "Usage: refreshd schema > plan.schema.json\n\nPrint the JSON Schema (draft 2020-12) of the plan format. Plans point editors at it\nwith a first line: # yaml-language-server: $schema=PATH", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	if _, err := stdout.Write(plan.Schema()); err != nil {
		fmt.Fprintf(stderr, "refreshd schema: %v\n", err)
		return 1
	}
	return 0
}
