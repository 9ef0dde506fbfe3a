package metrics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refreshd_cache_tag_age_seconds: one series per dated tag, its age at scrape time; an
// undated tag has none; past MaxTagSeries the oldest tags are kept; a store that cannot be
// read fails the scrape rather than reporting every cache fresh.
func TestTagAges(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	c := newTagAges()
	c.now = func() time.Time { return now }
	collect := func() (map[string]float64, error) {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				out[strings.Join(labels, ",")] = m.GetGauge().GetValue()
			}
		}
		return out, err
	}
	c.list = func() ([]TagAge, error) {
		return []TagAge{
			{Plan: "demo/main", Ref: "r/a:cache-linux-amd64", Changed: now.Add(-90 * time.Minute)},
			{Plan: "demo/main", Ref: "r/b:cache-linux-amd64"}, // undated
		}, nil
	}
	got, err := collect()
	if err != nil || len(got) != 1 || got["plan=demo/main,ref=r/a:cache-linux-amd64"] != 5400 {
		t.Errorf("ages %v (%v), want one series of 5400 s", got, err)
	}

	c.list = func() ([]TagAge, error) {
		tags := make([]TagAge, MaxTagSeries+10)
		for i := range tags {
			tags[i] = TagAge{Plan: "p", Ref: fmt.Sprintf("r/%05d", i), Changed: now.Add(-time.Duration(i) * time.Minute)}
		}
		return tags, nil
	}
	got, err = collect()
	_, newest := got["plan=p,ref=r/00000"]
	if err != nil || len(got) != MaxTagSeries || got[fmt.Sprintf("plan=p,ref=r/%05d", MaxTagSeries+9)] == 0 || newest {
		t.Errorf("%d series (%v), want the %d oldest", len(got), err, MaxTagSeries)
	}

	c.list = func() ([]TagAge, error) { return nil, errors.New("store closed") }
	if _, err := collect(); err == nil || !strings.Contains(err.Error(), "store closed") {
		t.Errorf("an unreadable store: %v, want the scrape to fail naming it", err)
	}
}
