package main

import (
	"context"
	"fmt"
	"io"

	"github.com/refreshd/refreshd/plan"
)

// cmdSchema prints the JSON Schema of the plan format, for editors (yaml-language-server)
// and for checking plans with any JSON Schema validator.
func cmdSchema(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schema", "", "Print the JSON Schema (draft 2020-12) of the plan format: refreshd schema > plan.schema.json.\nPlans point editors at it with a first line: # yaml-language-server: $schema=PATH")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := stdout.Write(plan.Schema()); err != nil {
		return fmt.Errorf("write the schema: %w", err)
	}
	return nil
}
