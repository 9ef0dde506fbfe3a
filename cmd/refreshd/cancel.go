package main

import (
	"context"
	"fmt"
	"io"
)

// PLACEHOLDER: replaced by the owner of this subcommand.
func cmdCancel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "refreshd: not implemented yet")
	return 2
}
