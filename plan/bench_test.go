package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoad loads and validates a directory of 100 plans the size of plans/airflow.yaml
// (each with its two instances, sharing the builder of plans/builders.yaml). One op = the whole directory.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	airflow, err := os.ReadFile("../plans/airflow.yaml")
	if err != nil {
		b.Fatal(err)
	}
	builders, err := os.ReadFile("../plans/builders.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "builders.yaml"), builders, 0o644); err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		data := strings.Replace(string(airflow), "plan: airflow\n", fmt.Sprintf("plan: airflow-%03d\n", i), 1)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("airflow-%03d.yaml", i)), []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		plans, err := LoadDir(dir)
		if err != nil || len(plans) != 200 { // two instances each
			b.Fatalf("LoadDir: %d plans, %v", len(plans), err)
		}
	}
}

// BenchmarkLoadLargestPlan loads and expands the largest plan the caps allow: a file just
// under the 1 MiB limit with MaxInstances steps, each needing the two before it, so ordering
// and checks must be linear in plan size (the target is well under a second).
func BenchmarkLoadLargestPlan(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("plan: largest\nsteps:\n")
	for i := 0; sb.Len() < maxFileSize-200 && i < MaxInstances; i++ {
		fmt.Fprintf(&sb, "  - id: s%05d\n    run: [/bin/true, pad]\n", i)
		switch {
		case i >= 2:
			fmt.Fprintf(&sb, "    needs: [s%05d, s%05d]\n", i-1, i-2)
		case i == 1:
			sb.WriteString("    needs: [s00000]\n")
		}
	}
	path := filepath.Join(b.TempDir(), "largest.yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(sb.Len()), "plan-bytes")
	b.ResetTimer()
	for b.Loop() {
		p, err := LoadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Expand(p); err != nil {
			b.Fatal(err)
		}
	}
}
