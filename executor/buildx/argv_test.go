package buildx

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Every word BuildArgv, createArgv, rmArgv, BootstrapArgv, ContextRmArgv and the leave command may put before
// the end of options; "--flag=" stands for a flag with its value bound.
var buildxVocabulary = []string{
	"buildx", "build", "create", "rm", "inspect", "context", "--progress=plain", "--output=type=cacheonly",
	"--append", "--leave", "--force", "--keep-state", "--bootstrap",
	"--builder=", "--platform=", "--file=", "--target=", "--build-arg=", "--cache-from=", "--cache-to=",
	"--metadata-file=", "--name=", "--driver=", "--node=", "--driver-opt=",
}

var hostileValues = []string{
	"--upload-pack=touch /tmp/x", "-", "-q", "--output=type=local,dest=/etc", "a\nb", "a\x00b", "",
}

// recordRunner is a Runner that starts nothing and records every argv.
func recordRunner(calls *[][]string) Runner {
	return func(ctx context.Context, argv, env []string, stdout io.Writer) error {
		*calls = append(*calls, slices.Clone(argv))
		return nil
	}
}

// TestArgvHostileRefused drives the build and the provisioning with each hostile value in
// each field: every one is refused before any program starts, or (bound to its flag) reaches
// buildx only as that flag's value.
func TestArgvHostileRefused(t *testing.T) {
	base := BuildOptions{Builder: "b", Platform: "linux/amd64", Context: ".", CacheRef: "r.example/x:cache-linux-amd64",
		BuildArgs: []BuildArg{{"PYTHON", "3.12"}}}
	fields := map[string]func(o *BuildOptions, v string){
		"builder":   func(o *BuildOptions, v string) { o.Builder = v },
		"platform":  func(o *BuildOptions, v string) { o.Platform = v },
		"context":   func(o *BuildOptions, v string) { o.Context = v },
		"file":      func(o *BuildOptions, v string) { o.File = v },
		"target":    func(o *BuildOptions, v string) { o.Target = v },
		"arg name":  func(o *BuildOptions, v string) { o.BuildArgs = []BuildArg{{v, "x"}} },
		"arg value": func(o *BuildOptions, v string) { o.BuildArgs = []BuildArg{{"A", v}} },
		"cache ref": func(o *BuildOptions, v string) { o.CacheRef = v },
	}
	// Values hostile in one field only: a "," adds attributes to the cache export, a "="
	// moves a build arg's name.
	only := map[string]string{"r.example/x:t,type=local,dest=/etc": "cache ref", "A=B": "arg name"}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		for _, v := range append(hostileValues, "r.example/x:t,type=local,dest=/etc", "A=B") {
			o := base
			fields[name](&o, v)
			var calls [][]string
			c := &Client{Run: recordRunner(&calls), Query: recordRunner(&calls), Log: slog.New(slog.DiscardHandler)}
			_, err := c.Build(context.Background(), o)
			// A value bound to its flag may be anything but a control character; an empty
			// file or target is left out; the others must be refused.
			acceptable := name == "arg value" && !strings.ContainsAny(v, "\n\x00") ||
				(name == "file" || name == "target") && v == "" ||
				only[v] != "" && only[v] != name && !(name == "arg name" && strings.Contains(v, "="))
			switch {
			case err != nil && len(calls) > 0:
				t.Errorf("build with %s %q failed (%v) after running %q", name, v, err, calls)
			case err != nil && acceptable:
				t.Errorf("build with %s %q refused: %v", name, v, err)
			case err == nil && !acceptable:
				t.Errorf("build with %s %q accepted: %q", name, v, calls)
			case err == nil:
				if err := buildArgvShape(o, calls[0]); err != nil {
					t.Errorf("build with %s %q: %v", name, v, err)
				}
			}
		}
	}
	specFields := map[string]func(s *BuilderSpec, v string){
		"name":            func(s *BuilderSpec, v string) { s.Name = v },
		"driver":          func(s *BuilderSpec, v string) { s.Driver = v },
		"node":            func(s *BuilderSpec, v string) { s.Nodes[0].Name = v },
		"endpoint":        func(s *BuilderSpec, v string) { s.Nodes[0].Endpoint = v },
		"platform":        func(s *BuilderSpec, v string) { s.Nodes[0].Platform = v },
		"driver opt name": func(s *BuilderSpec, v string) { s.Nodes[0].DriverOpts = map[string]string{v: "x"} },
		"driver opt":      func(s *BuilderSpec, v string) { s.Nodes[0].DriverOpts = map[string]string{"cacert": v} },
	}
	for _, name := range slices.Sorted(maps.Keys(specFields)) {
		for _, v := range hostileValues {
			spec := BuilderSpec{Name: "b", Driver: "remote", Nodes: []NodeSpec{{Name: "n0", Endpoint: "tcp://h:1", Platform: "linux/amd64"}}}
			specFields[name](&spec, v)
			var calls [][]string
			c := &Client{Run: recordRunner(&calls), Query: recordRunner(&calls), Log: slog.New(slog.DiscardHandler)}
			// The recorder lists no builder, so an accepted spec runs its commands and then
			// fails, "still differs"; a refused one runs nothing.
			_, _, err := c.ProvisionAll(context.Background(), []BuilderSpec{spec})
			acceptable := name == "driver opt" && !strings.ContainsAny(v, "\n\x00") || (name == "endpoint" || name == "platform") && v == ""
			switch {
			case err == nil:
				t.Fatalf("provision against the recorder succeeded")
			case len(calls) > 0 && !acceptable:
				t.Errorf("provision with %s %q ran %q", name, v, calls)
			case len(calls) == 0 && acceptable:
				t.Errorf("provision with %s %q refused: %v", name, v, err)
			case len(calls) > 0:
				if err := specArgvShape(spec); err != nil {
					t.Errorf("provision with %s %q: %v", name, v, err)
				}
			}
		}
	}
}

// buildArgvShape: options only from the vocabulary, then `--` and the context.
func buildArgvShape(o BuildOptions, argv []string) error {
	return testkit.EndsOptions(argv, buildxVocabulary, "--", o.Context)
}

// specArgvShape checks every command Diff would run for spec, from nothing and against a
// builder with another driver and a stray node.
func specArgvShape(spec BuilderSpec) error {
	cur := &BuilderState{Name: spec.Name, Driver: "other", Nodes: []NodeState{{Name: "stray"}}}
	stray := &BuilderState{Name: spec.Name, Driver: spec.Driver, Nodes: []NodeState{{Name: spec.Nodes[0].Name}, {Name: "stray"}}}
	var changes []Change
	for _, c := range []*BuilderState{nil, cur, stray} {
		changes = append(changes, Diff("docker", spec, c)...)
	}
	for _, ch := range changes {
		var err error
		switch ch.Kind {
		case ChangeRemove:
			err = testkit.EndsOptions(ch.Argv, buildxVocabulary, "--", spec.Name)
		case ChangeLeave:
			err = testkit.EndsOptions(ch.Argv, buildxVocabulary, "")
		default:
			if n := spec.Nodes[0]; n.Endpoint != "" {
				err = testkit.EndsOptions(ch.Argv, buildxVocabulary, "--", n.Endpoint)
			} else {
				err = testkit.EndsOptions(ch.Argv, buildxVocabulary, "")
			}
		}
		if err != nil {
			return err
		}
	}
	if err := testkit.EndsOptions(ContextRmArgv("docker", spec.Name), buildxVocabulary, "--", spec.Name); err != nil {
		return err
	}
	return testkit.EndsOptions(BootstrapArgv("docker", spec.Name), buildxVocabulary, "--", spec.Name)
}

// FuzzBuildxArgv: whatever a plan renders into a build or a builder, it is refused before a
// program starts, or every value reaches buildx bound to its flag or after `--`.
func FuzzBuildxArgv(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v, v, v, v, v)
	}
	f.Add("b", "linux/amd64", ".", "A", "tcp://h:1")
	f.Fuzz(func(t *testing.T, name, platform, context, arg, endpoint string) {
		o := BuildOptions{Builder: name, Platform: platform, Context: context, File: context, Target: arg,
			BuildArgs: []BuildArg{{arg, endpoint}}, CacheRef: "r.example/" + name, MetadataFile: endpoint}
		if o.check() == nil {
			if err := buildArgvShape(o, BuildArgv("docker", o)); err != nil {
				t.Fatal(err)
			}
		}
		spec := BuilderSpec{Name: name, Driver: platform, Nodes: []NodeSpec{{Name: context, Endpoint: endpoint, Platform: platform,
			DriverOpts: map[string]string{arg: endpoint}}}}
		if spec.check() == nil {
			if err := specArgvShape(spec); err != nil {
				t.Fatal(err)
			}
		}
	})
}
