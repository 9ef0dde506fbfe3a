package sample

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// builder drives `docker buildx build` of the sample project on a stack's two nodes.
type builder struct {
	t       *testing.T
	s       *stack
	project string
}

const testBuilder = "sample_test"

func newBuilder(t *testing.T, s *stack) *builder {
	t.Helper()
	b := &builder{t: t, s: s, project: s.Env["REFRESHD_DEMO_PROJECT"]}
	b.docker("buildx", "create", "--name", testBuilder, "--driver", "remote", "--node", testBuilder+"0",
		"--platform", "linux/amd64", s.Env["BUILDKIT_NODE0"])
	b.docker("buildx", "create", "--name", testBuilder, "--append", "--node", testBuilder+"1",
		"--platform", "linux/386", s.Env["BUILDKIT_NODE1"])
	return b
}

func (b *builder) docker(args ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Dir = b.project
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+b.s.Env["DOCKER_CONFIG"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// build runs one build of Dockerfile.ci with the flags the demo plan uses, a small
// INSTALL_WORK_MB to keep the test short, and plain progress for installRan.
func (b *builder) build(platform string, args ...string) string {
	b.t.Helper()
	argv := []string{"buildx", "build", "--builder", testBuilder, "--platform", platform,
		"--file", "Dockerfile.ci", "--progress", "plain",
		"--build-arg", "BASE_IMAGE=" + b.s.Env["REGISTRY"] + "/base/busybox:1",
		"--build-arg", "INSTALL_WORK_MB=20"}
	return b.docker(append(append(argv, args...), ".")...)
}

var installStep = regexp.MustCompile(`(?m)^#(\d+) \[deps \d+/\d+\] RUN sh scripts/install.sh`)

// installRan says whether the dependency installation really ran in a build (false: it was
// a cache hit). BuildKit prints "#N CACHED" for a vertex it did not run.
func installRan(t *testing.T, progress string) bool {
	t.Helper()
	m := installStep.FindStringSubmatch(progress)
	if m == nil {
		t.Fatalf("no install step in the build output:\n%s", progress)
	}
	return !regexp.MustCompile(`(?m)^#` + m[1] + ` CACHED$`).MatchString(progress)
}

// constraints exports one mode for Python 3.11 into files/constraints-3.11 and returns the
// published file's header and pin lines.
func (b *builder) constraints(mode string) (header, pins []string) {
	b.t.Helper()
	b.build("linux/amd64", "--target", "constraints", "--no-cache-filter", "constraints-gen",
		"--build-arg", "PYTHON_VERSION=3.11", "--build-arg", "UPGRADE=true",
		"--build-arg", "CONSTRAINTS_MODE="+mode, "--output", "type=local,dest=files/constraints-3.11")
	body, err := os.ReadFile(filepath.Join(b.project, "files", "constraints-3.11", mode+"-3.11.txt"))
	if err != nil {
		b.t.Fatalf("read exported constraints: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			header = append(header, line)
		} else {
			pins = append(pins, line)
		}
	}
	return header, pins
}

func goldenPins(t *testing.T, name string) []string {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "constraints", name))
	if err != nil {
		t.Fatal(err)
	}
	var pins []string
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		if !strings.HasPrefix(line, "#") {
			pins = append(pins, line)
		}
	}
	return pins
}

// TestDockerfileOnStack builds the sample with the real buildx on two buildkitd nodes: the
// dependency layer is cached until the upgrade switch or the index changes, the constraint
// export carries a fresh header every time and the expected pins, and the per-platform
// registry cache is really reused by a node that lost its local cache.
func TestDockerfileOnStack(t *testing.T) {
	s := upStack(t)
	b := newBuilder(t, s)
	ci := func(upgrade string, extra ...string) string {
		return b.build("linux/amd64", append([]string{"--target", "ci",
			"--build-arg", "PYTHON_VERSION=3.11", "--build-arg", "UPGRADE=" + upgrade}, extra...)...)
	}

	if !installRan(t, ci("true")) {
		t.Fatal("first build: install was a cache hit on a fresh node")
	}
	if installRan(t, ci("true")) {
		t.Fatal("second identical build: install ran again; want a cache hit")
	}
	if !installRan(t, ci("false")) {
		t.Fatal("UPGRADE=false after UPGRADE=true: install was a cache hit; the switch must bust it")
	}

	// Constraints: every file, the expected pins, a header with this build's time.
	modes := []string{"constraints", "constraints-source-providers", "constraints-no-providers"}
	var firstHeader []string
	for _, mode := range modes {
		header, pins := b.constraints(mode)
		if want := goldenPins(t, mode+"-3.11.txt"); strings.Join(pins, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s pins from the image:\n%s\nwant (testdata):\n%s", mode, strings.Join(pins, "\n"), strings.Join(want, "\n"))
		}
		if mode == "constraints" {
			firstHeader = header
		}
	}
	entries, err := os.ReadDir(filepath.Join(b.project, "files", "constraints-3.11"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 9 {
		t.Fatalf("exported %d files, want 9 (3 modes x constraints, original, diff)", len(entries))
	}
	stamp := regexp.MustCompile(`generated on (\S+Z)`).FindStringSubmatch(strings.Join(firstHeader, "\n"))
	if stamp == nil {
		t.Fatalf("no generation time in the header:\n%s", strings.Join(firstHeader, "\n"))
	}
	at, err := time.Parse(time.RFC3339, stamp[1])
	if err != nil || time.Since(at) > 5*time.Minute || time.Until(at) > time.Minute {
		t.Fatalf("header time %q is not this build's (now %s, err %v)", stamp[1], time.Now().UTC(), err)
	}

	// Again, a second later: only the header changes.
	time.Sleep(time.Until(at.Add(1100 * time.Millisecond)))
	header, pins := b.constraints("constraints")
	if strings.Join(header, "\n") == strings.Join(firstHeader, "\n") {
		t.Fatal("second export kept the same header; --no-cache-filter must regenerate it")
	}
	if want := goldenPins(t, "constraints-3.11.txt"); strings.Join(pins, "\n") != strings.Join(want, "\n") {
		t.Fatalf("second export changed the pins:\n%s", strings.Join(pins, "\n"))
	}

	// An upstream release: the dependency layer is rebuilt and exactly that pin changes.
	index := filepath.Join(b.project, "index", "packages.txt")
	f, err := os.OpenFile(index, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("httpx 0.28.1\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !installRan(t, ci("true")) {
		t.Fatal("build after a release in the index: install was a cache hit")
	}
	_, after := b.constraints("constraints")
	var changed []string
	for i := range after {
		if i >= len(pins) || after[i] != pins[i] {
			changed = append(changed, after[i])
		}
	}
	if strings.Join(changed, " ") != "httpx==0.28.1" || len(after) != len(pins) {
		t.Fatalf("pins after the release changed %v (of %d), want only httpx==0.28.1", changed, len(after))
	}

	// Per-platform registry cache, one build per node, then reuse from the registry alone.
	repo := s.Env["REGISTRY"] + "/sample/ci/python3.11"
	cacheBuild := func(platform string) string {
		ref := repo + ":cache-" + strings.ReplaceAll(platform, "/", "-")
		return b.build(platform, "--target", "ci", "--build-arg", "PYTHON_VERSION=3.11", "--build-arg", "UPGRADE=true",
			"--cache-from", "type=registry,ref="+ref, "--cache-to", "type=registry,ref="+ref+",mode=max")
	}
	if !installRan(t, cacheBuild("linux/386")) {
		t.Fatal("first linux/386 build: install was a cache hit; the linux/386 node never built it")
	}
	cacheBuild("linux/amd64")
	resp, err := http.Get("http://" + s.Env["REGISTRY"] + "/v2/sample/ci/python3.11/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	var tags struct{ Tags []string }
	err = json.NewDecoder(resp.Body).Decode(&tags)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tags.Tags, ","); !strings.Contains(got, "cache-linux-amd64") || !strings.Contains(got, "cache-linux-386") {
		t.Fatalf("registry tags %v, want cache-linux-amd64 and cache-linux-386", tags.Tags)
	}
	b.docker("buildx", "prune", "--builder", testBuilder, "--all", "--force")
	if installRan(t, cacheBuild("linux/386")) {
		t.Fatal("linux/386 build after pruning the nodes: install ran; the registry cache was not used")
	}
}
