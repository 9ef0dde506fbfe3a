package plan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoad loads and validates a directory of 100 plans the size of plans/airflow.yaml
// (one per branch, sharing the builder of plans/builders.yaml). One op = the whole directory.
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
		data := strings.Replace(string(airflow), "plan: airflow-main", fmt.Sprintf("plan: airflow-%03d", i), 1)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("airflow-%03d.yaml", i)), []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		plans, err := LoadDir(dir)
		if err != nil || len(plans) != 100 {
			b.Fatalf("LoadDir: %d plans, %v", len(plans), err)
		}
	}
}
