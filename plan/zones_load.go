package plan

import (
	"fmt"
	"slices"
	"time"

	// The zones of zoneNames load on any machine, with or without system tzdata.
	_ "time/tzdata"
)

// loadZone loads a plan's time zone: one of zoneNames (so "Local", a POSIX TZ string or a
// file name of the system's zoneinfo directory that Go's tzdata lacks, like posixrules, is
// not one).
func loadZone(name string) (*time.Location, error) {
	if _, ok := slices.BinarySearch(zoneNames[:], name); !ok {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return time.LoadLocation(name)
}
