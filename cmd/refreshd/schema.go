package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/plan"
)

// cmdSchema prints the JSON Schema of the plan format, for editors (yaml-language-server)
// and for checking plans with any JSON Schema validator.
func cmdSchema(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: refreshd schema > plan.schema.json\n\nPrint the JSON Schema (draft 2020-12) of the plan format. Plans point editors at it\nwith a first line: # yaml-language-server: $schema=PATH")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
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
