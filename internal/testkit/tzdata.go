package testkit

import (
	"archive/zip"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GoTZData returns every zone of Go's own tzdata (GOROOT/lib/time/zoneinfo.zip, what
// time/tzdata embeds), by name, as TZif data for time.LoadLocationFromTZData.
func GoTZData(t testing.TB) map[string][]byte {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	zr, err := zip.OpenReader(filepath.Join(strings.TrimSpace(string(out)), "lib", "time", "zoneinfo.zip"))
	if err != nil {
		t.Fatalf("open Go's tzdata: %v", err)
	}
	defer zr.Close()
	zones := make(map[string][]byte)
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatalf("read Go's tzdata: %v", err)
		}
		data, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("read zone %s of Go's tzdata: %v", f.Name, err)
		}
		zones[f.Name] = data
	}
	return zones
}
