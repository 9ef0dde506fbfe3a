package executor

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/plan"
)

// A registry answering every request with 503 and "Retry-After: 3600" holds a run's
// skip_if for at most the run's registry budget, shared by all its conditions, and the
// warnings say which registry held it. Before the cap, one such answer held a run in skip_if
// for the hour it asked for.
func TestSkipIfRegistryBudget(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	image := func(line int, ref string) plan.SkipCondition {
		return plan.SkipCondition{Pos: plan.Pos{File: "p.yaml", Line: line, Col: 5}, Image: &plan.ImageFreshness{Ref: ref, Within: time.Hour}}
	}
	tags := plan.SkipCondition{Pos: plan.Pos{File: "p.yaml", Line: 9, Col: 5}, Tags: &plan.TagsFreshness{Refs: []string{host + "/ci:cache-amd64", host + "/ci:cache-arm64"}, Within: time.Hour}}
	tests := []struct {
		name     string
		attempts int
		budget   time.Duration
		conds    []plan.SkipCondition
		within   time.Duration // the whole check, generously
		warnings []string      // substrings, one per warning
	}{
		{name: "tries end the request", attempts: 3, budget: time.Minute, conds: []plan.SkipCondition{image(7, host+"/ci:latest")},
			within: 5 * time.Second, warnings: []string{"503 Service Unavailable"}},
		{name: "the budget ends the checks", attempts: 1000, budget: time.Second,
			conds: []plan.SkipCondition{image(7, host+"/ci:latest"), image(8, host+"/ci:other"), tags}, within: 6 * time.Second,
			warnings: []string{"registry " + host + " held the checks past the run's budget for registry checks (1s)",
				"registry " + host + " held the checks", "could not look up " + host + "/ci:cache-amd64 (registry " + host + " held"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tools := &Tools{PlainHTTPRegistries: []string{host}, DockerConfig: t.TempDir(), RegistryAttempts: tt.attempts,
				RegistryRetryWaitMin: 10 * time.Millisecond, RegistryRetryWaitMax: 100 * time.Millisecond}
			start := time.Now()
			budget := newRegistryBudget(tt.budget)
			var warnings []string
			for _, c := range tt.conds {
				fresh, _, warn := tools.checkCond(t.Context(), &plan.Graph{Plan: &plan.Plan{SkipIf: tt.conds}}, c, c.Tags.RefsIfKnown(), nil, nil, fakeTags{},
					budget, slog.New(slog.NewTextHandler(t.Output(), nil)))
				if fresh {
					t.Errorf("%s: fresh on a registry that never answered", c.Pos)
				}
				if warn != "" {
					warnings = append(warnings, warn)
				}
			}
			took := time.Since(start)
			if took > tt.within {
				t.Errorf("skip_if took %s, want at most %s", took, tt.within)
			}
			if len(warnings) != len(tt.warnings) {
				t.Fatalf("warnings %q, want %d", warnings, len(tt.warnings))
			}
			for i, w := range tt.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q, want it to contain %q", warnings[i], w)
				}
			}
			t.Logf("%d requests, %s", requests.Load(), took.Round(time.Millisecond))
		})
	}
}

// fakeTags is a tag store that records nothing (the registry never answers in this test).
type fakeTags struct{}

func (fakeTags) ObserveTag(ref, digest string, at time.Time) (history.Tag, error) {
	return history.Tag{Ref: ref, Digest: digest}, nil
}
