package plan

import (
	"maps"
	"slices"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestZoneNamesAreGoTZData keeps schema.json's timezone enum, the one list of zone names
// (the loader reads it), equal to the zones of Go's tzdata: after a Go upgrade,
// `go generate ./plan` rewrites it. Every name loads.
func TestZoneNamesAreGoTZData(t *testing.T) {
	want := slices.Sorted(maps.Keys(testkit.GoTZData(t)))
	if got := zoneNames(); !slices.Equal(got, want) {
		t.Errorf("schema.json $defs/timezone has %d names, Go's tzdata %d: run go generate ./plan", len(got), len(want))
	}
	for _, n := range zoneNames() {
		if _, err := loadZone(n); err != nil {
			t.Errorf("zone %s does not load: %v", n, err)
		}
	}
}
