package buildx

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Captured from the real programs on the test stack.
func TestParseLs(t *testing.T) {
	data, err := os.ReadFile("testdata/ls.json")
	if err != nil {
		t.Fatal(err)
	}
	bs, err := parseLs(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Name != "b1" || bs[0].Driver != "remote" || len(bs[0].Nodes) != 2 {
		t.Fatalf("parsed %+v", bs)
	}
	n0, n1 := bs[0].Nodes[0], bs[0].Nodes[1]
	if n0.Status != "running" || n0.Platforms[0] != "linux/amd64" || n1.Status != "inactive" || n1.Endpoint != "tcp://127.0.0.1:21299" {
		t.Errorf("nodes %+v %+v", n0, n1)
	}
	if bs[1].Err == "" {
		t.Errorf("default builder error not kept: %+v", bs[1])
	}
	if _, err := parseLs([]byte("{\"Name\":\"x\"}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: error %v, want one naming line 2", err)
	}
}

func TestParseWorkers(t *testing.T) {
	data, err := os.ReadFile("testdata/workers.json")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := parseWorkers(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4", "linux/386"}
	if !slices.Equal(ps, want) {
		t.Errorf("platforms %v, want %v", ps, want)
	}
	if _, err := parseWorkers([]byte("[]")); err == nil {
		t.Error("no workers: want an error")
	}
}

func TestParseMetadata(t *testing.T) {
	data, err := os.ReadFile("testdata/metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMetadata("metadata.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Builder != "b1" || m.Node != "n0" || m.Ref == "" || !strings.HasPrefix(m.CacheManifest, "sha256:") {
		t.Errorf("metadata %+v", m)
	}
	for _, bad := range []string{`{}`, `{"buildx.build.ref":"b1"}`, `nope`} {
		if _, err := parseMetadata("m.json", []byte(bad)); err == nil || !strings.Contains(err.Error(), "m.json") {
			t.Errorf("ParseMetadata(%s): error %v, want one naming m.json", bad, err)
		}
	}
}

func TestNativeFromLs(t *testing.T) {
	amd := []string{"linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4", "linux/386"}
	tests := []struct {
		name      string
		pinned    []string
		platforms []string
		want      string
	}{
		{"pinned native", []string{"linux/amd64"}, amd, "linux/amd64"},
		{"pinned 386 on amd64", []string{"linux/386"}, append([]string{"linux/386"}, amd[:4]...), "linux/amd64"},
		{"pinned arm64 on amd64", []string{"linux/arm64"}, append([]string{"linux/arm64"}, amd...), "linux/amd64"},
		{"not running", []string{"linux/arm64"}, []string{"linux/arm64"}, "linux/arm64"},
		{"unpinned", nil, amd, "linux/amd64"},
	}
	for _, tt := range tests {
		got, err := nativeFromLs(tt.pinned, tt.platforms)
		if err != nil || got != tt.want {
			t.Errorf("%s: NativeFromLs = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

// Captured from the real docker CLI (28.2): a context made by `docker context create
// airflow_cache` (breeze's), the default one, one pointing elsewhere.
func TestParseContexts(t *testing.T) {
	data, err := os.ReadFile("testdata/contexts.json")
	if err != nil {
		t.Fatal(err)
	}
	list, err := parseContexts(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []DockerContextInfo{
		{Name: "airflow_cache", DockerEndpoint: "unix:///var/run/docker.sock"},
		{Name: "default", DockerEndpoint: "unix:///var/run/docker.sock"},
		{Name: "other", DockerEndpoint: "tcp://10.1.2.3:2376"},
	}
	if !slices.Equal(list, want) {
		t.Errorf("parsed %+v, want %+v", list, want)
	}
	if _, err := parseContexts([]byte("{\"Name\":\"x\"}\n{\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: error %v, want one naming line 2", err)
	}
}

func TestDiff(t *testing.T) {
	spec := BuilderSpec{Name: "b", Driver: "remote", Nodes: []NodeSpec{
		{Name: "b0", Endpoint: "tcp://h0:1234", Platform: "linux/amd64"},
		{Name: "b1", Endpoint: "tcp://h1:1234", Platform: "linux/arm64", DriverOpts: map[string]string{"cacert": "/ca.pem"}},
	}}
	same := &BuilderState{Name: "b", Driver: "remote", Nodes: []NodeState{
		{Name: "b0", Endpoint: "tcp://h0:1234", Pinned: []string{"linux/amd64"}},
		{Name: "b1", Endpoint: "tcp://h1:1234", Pinned: []string{"linux/arm64"}, DriverOpts: map[string]string{"cacert": "/ca.pem"}},
	}}
	otherDriver := *same
	otherDriver.Driver = "docker-container"
	extra := *same
	extra.Nodes = append(slices.Clone(same.Nodes), NodeState{Name: "old", Endpoint: "tcp://h2:1234"})
	repinned := *same
	repinned.Nodes = slices.Clone(same.Nodes)
	repinned.Nodes[1].Pinned = nil
	stranger := &BuilderState{Name: "b", Driver: "remote", Nodes: []NodeState{{Name: "x", Endpoint: "tcp://x:1"}}}
	// What ls shows for a docker context named b when buildx's store has no builder b.
	contextOnly := &BuilderState{Name: "b", Driver: "docker", Context: true, Nodes: []NodeState{{Name: "b", Endpoint: "b", Status: "running"}}}
	tests := []struct {
		name string
		cur  *BuilderState
	}{
		{"absent", nil},
		{"same", same},
		{"driver changed", &otherDriver},
		{"extra node", &extra},
		{"pin lost", &repinned},
		{"no declared node", stranger},
		{"a docker context of its name", contextOnly},
	}
	var out strings.Builder
	for _, tt := range tests {
		out.WriteString("== " + tt.name + "\n")
		for _, ch := range Diff("docker", spec, tt.cur) {
			out.WriteString(ch.String() + "\n  " + strings.Join(ch.Argv, " ") + "\n")
		}
	}
	testkit.Golden(t, "testdata/diff.golden", out.String())
}

func TestBuildArgv(t *testing.T) {
	argv := BuildArgv("docker", BuildOptions{
		Builder: "airflow_cache", Platform: "linux/arm64", Context: ".", File: "Dockerfile.ci", Target: "main",
		BuildArgs:    []BuildArg{{"PYTHON_BASE_IMAGE", "python:3.12-slim-bookworm"}, {"UPGRADE", "true"}},
		CacheRef:     "ghcr.io/apache/airflow/main/ci/python3.12:cache-linux-arm64",
		MetadataFile: "/var/lib/refreshd/runs/R1/refresh-cache[python=3.12][linux/arm64].json",
	})
	testkit.Golden(t, "testdata/build-argv.golden", strings.Join(argv, "\n")+"\n")
}
