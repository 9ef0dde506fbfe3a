package tagwatch

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/refreshd/refreshd/executor"
	"github.com/refreshd/refreshd/internal/teststack"
)

// TestLookOnTheRealStack: BuildKit cache tags in a real registry, pushed by buildctl from
// outside refreshd between two passes of the watcher, which reads them with the engine's
// registry client: the pass after the push dates it (changed after the pass before, by this
// one); a tag not pushed again keeps its date.
func TestLookOnTheRealStack(t *testing.T) {
	teststack.Require(t)
	reg := teststack.StartRegistry(t, teststack.RegistryOptions{})
	node := teststack.StartBuildkitd(t, "outside")
	refs := []string{
		fmt.Sprintf("%s/ci/python3.11:cache-linux-amd64", reg.Host),
		fmt.Sprintf("%s/ci/python3.12:cache-linux-amd64", reg.Host),
	}
	st := openStore(t)
	for _, ref := range refs {
		node.PushCache(t, ref)
		if _, err := st.ObserveTag(ref, "", time.Now()); err != nil { // a run asked for it
			t.Fatal(err)
		}
	}
	tools := &executor.Tools{PlainHTTPRegistries: []string{"127.0.0.1"}, DockerConfig: teststack.DockerConfig(t), RegistryAttempts: 1}
	w := &Watcher{Store: st, Lookup: tools.TagLookup(slog.New(slog.DiscardHandler)), Log: slog.New(slog.DiscardHandler)}

	first := time.Now()
	if p := w.Look(t.Context()); p != (Pass{Looked: 2, Changed: 2}) {
		t.Fatalf("first pass %+v; want both tags looked at and changed (recorded absent before)", p)
	}
	before, err := st.Tags()
	if err != nil {
		t.Fatal(err)
	}
	node.PushCache(t, refs[1])
	pushed := time.Now()
	if p := w.Look(t.Context()); p != (Pass{Looked: 2, Changed: 1}) {
		t.Fatalf("pass after a push to one tag %+v; want 2 looked, 1 changed", p)
	}
	after, err := st.Tags()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := after[refs[0]], before[refs[0]]; a.Digest != b.Digest || !a.ChangedBy.Equal(b.ChangedBy) {
		t.Errorf("tag not pushed again: %+v, was %+v", a, b)
	}
	got := after[refs[1]]
	if got.Digest == before[refs[1]].Digest || got.ChangedAfter.Before(first) || got.ChangedBy.Before(pushed) || time.Since(got.ChangedBy) > time.Minute {
		t.Errorf("pushed tag %+v (was %+v); want a new digest dated between the pass before (%s) and this one (after %s)",
			got, before[refs[1]], first.Format(time.RFC3339Nano), pushed.Format(time.RFC3339Nano))
	}
}
