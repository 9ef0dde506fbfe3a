package plan

import (
	_ "embed"
	"slices"
)

//go:generate go run ./internal/zonegen

//go:embed schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of the plan format. A test keeps it in step
// with the keys the decoder accepts; the loader stays the authority on what is valid
// (templates, needs, builders), the schema gives editors completion and early checks.
func Schema() []byte { return slices.Clone(schemaJSON) }
