package git

import (
	"reflect"
	"regexp"
	"testing"
)

func TestParsePins(t *testing.T) {
	in := `#
# This constraints file was automatically generated on 2025-06-01T02:00:00Z
--index-url https://pypi.org/simple

Apache_Airflow.Providers-Amazon==8.0.0
requests == 2.31.0   # pinned for reasons
celery[redis]==5.3.1
mypkg @ https://example.com/mypkg.tar.gz#sha256=abc
tomli==2.0.1 ; python_version < "3.11"
numpy>=1.26
`
	want := map[string]string{
		"apache-airflow-providers-amazon": "8.0.0",
		"requests":                        "2.31.0",
		"celery":                          "5.3.1",
		"mypkg":                           "@ https://example.com/mypkg.tar.gz#sha256=abc",
		`tomli ; python_version < "3.11"`: "2.0.1",
		"numpy":                           ">=1.26",
	}
	if got := parsePins([]byte(in)); !reflect.DeepEqual(got, want) {
		t.Errorf("parsePins =\n%v\nwant\n%v", got, want)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
		ok   bool
	}{
		{"1.0", "1.0.0", 0, true},
		{"1.9", "1.10", -1, true},
		{"2.0.0", "1.99", 1, true},
		{"1.0rc1", "1.0", -1, true},
		{"1.0", "1.0.post1", -1, true},
		{"1.0.dev1", "1.0a1", -1, true},
		{"1.0a2", "1.0b1", -1, true},
		{"1.0.1", "1.0rc1", 1, true},
		{"2023.10.1", "2024.1", -1, true},
		{"1.0+local", "1.0", 0, true},
		{"@ https://x/a.tar.gz", "1.0", 0, false},
		{">=1", "2", 0, false},
	}
	for _, tc := range tests {
		got, ok := compareVersions(tc.a, tc.b)
		if got != tc.want || ok != tc.ok {
			t.Errorf("compareVersions(%q, %q) = %d, %v; want %d, %v", tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSummarize(t *testing.T) {
	var changes []Change
	for range 14 {
		changes = append(changes, Change{Kind: Upgraded})
	}
	changes = append(changes, Change{Kind: Added}, Change{Kind: Added}, Change{Kind: Removed})
	tests := []struct {
		changes []Change
		files   int
		want    string
	}{
		{nil, 0, "no change"},
		{changes, 3, "14 upgraded, 2 added, 1 removed across 3 files"},
		{changes[:1], 1, "1 upgraded in 1 file"},
		{nil, 1, "no package pins changed in 1 file"},
	}
	for _, tc := range tests {
		if got := summarize(tc.changes, tc.files); got != tc.want {
			t.Errorf("summarize(%d changes, %d files) = %q, want %q", len(tc.changes), tc.files, got, tc.want)
		}
	}
}

func TestMeaningful(t *testing.T) {
	ignore := regexp.MustCompile(`^#`)
	a := "# generated 2024\nx==1\r\ny==2\n"
	b := "# generated 2025\n# more header\nx==1\ny==2 \n"
	if string(meaningful([]byte(a), ignore)) != string(meaningful([]byte(b), ignore)) {
		t.Error("files differing only in comment lines, CRLF and trailing blanks compare as changed")
	}
	if string(meaningful([]byte(a), ignore)) == string(meaningful([]byte("x==1\ny==3\n"), ignore)) {
		t.Error("a changed pin compares as unchanged")
	}
}
