// Package layers has no code of its own: its test checks the layer drawing in docs/architecture.md
// against the import graph `go list` reports, so the drawing cannot go stale and no import
// can go up it unnoticed.
package layers
