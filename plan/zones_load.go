package plan

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	// The zones of zoneNames load on any machine, with or without system tzdata.
	_ "time/tzdata"
)

// zoneNames are the time zones a plan may name: every zone of Go's tzdata, as schema.json's
// timezone enum lists them (written there by go generate, plan/internal/zonegen): one
// list for editors and the loader, so a plan valid on one machine is valid on every machine,
// whatever its system tzdata holds. Read once from the embedded schema, sorted.
var zoneNames = sync.OnceValue(func() []string {
	var schema struct {
		Defs struct {
			Timezone struct {
				Enum []string `json:"enum"`
			} `json:"timezone"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		panic("plan: the embedded schema.json does not parse: " + err.Error()) // a build defect, caught by every test
	}
	names := schema.Defs.Timezone.Enum
	slices.Sort(names)
	return names
})

// loadZone loads a plan's time zone: one of zoneNames (so "Local", a POSIX TZ string or a
// file name of the system's zoneinfo directory that Go's tzdata lacks, like posixrules, is
// not one).
func loadZone(name string) (*time.Location, error) {
	if _, ok := slices.BinarySearch(zoneNames(), name); !ok {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return time.LoadLocation(name)
}
