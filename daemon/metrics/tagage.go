package metrics

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TagAge is a watched cache tag as refreshd_cache_tag_age_seconds reports it: the plan
// whose run last asked for it, its ref, and when refreshd dated its last change (zero: not
// dated yet, refreshd has seen only one digest of it).
type TagAge struct {
	Plan, Ref string
	Changed   time.Time
}

// MaxTagSeries bounds refreshd_cache_tag_age_seconds: at most this many series, the oldest
// tags first. Watched tags are already bounded by the plans (one per Python version,
// platform and instance, forgotten 90 days after the last run asked for them); the cap
// keeps a plan that renders thousands of refs from flooding the scrape.
const MaxTagSeries = 1000

// tagAges is refreshd_cache_tag_age_seconds, read from the store at each scrape: a tag's
// age grows by itself between changes, which a gauge set at each change would not show.
type tagAges struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	list func() ([]TagAge, error)
	now  func() time.Time
}

func newTagAges() *tagAges {
	return &tagAges{
		desc: prometheus.NewDesc("refreshd_cache_tag_age_seconds",
			"Seconds since refreshd dated the last change of a watched cache tag (its digest changed between two looks); absent until a change was seen.",
			[]string{"plan", "ref"}, nil),
		now: time.Now,
	}
}

// WatchTagAges makes every scrape report the age of each tag list returns.
func (m *Metrics) WatchTagAges(list func() ([]TagAge, error)) {
	m.tagAges.mu.Lock()
	m.tagAges.list = list
	m.tagAges.mu.Unlock()
}

func (c *tagAges) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *tagAges) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	list := c.list
	c.mu.Unlock()
	if list == nil {
		return
	}
	tags, err := list()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("read watched tags: %w", err))
		return
	}
	dated := tags[:0:0]
	for _, t := range tags {
		if !t.Changed.IsZero() {
			dated = append(dated, t)
		}
	}
	slices.SortFunc(dated, func(a, b TagAge) int { return cmp.Or(a.Changed.Compare(b.Changed), cmp.Compare(a.Ref, b.Ref)) })
	if len(dated) > MaxTagSeries {
		dated = dated[:MaxTagSeries]
	}
	now := c.now()
	for _, t := range dated {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, now.Sub(t.Changed).Seconds(), t.Plan, t.Ref)
	}
}
