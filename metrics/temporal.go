package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// TemporalHandler gives the Temporal SDK's own metrics (request latency,
// schedule-to-start, workflow end-to-end, task failures…) to this registry.
// The SDK names metrics and tags them freely, so series are kept by name and
// tag set and exported on each scrape.
func (r *Registry) TemporalHandler() client.MetricsHandler {
	if r == nil {
		return nil
	}
	r.once.Do(func() {
		r.sdk = &sdkMetrics{series: map[string]*series{}}
		r.reg.MustRegister(r.sdk)
	})
	return sdkHandler{m: r.sdk}
}

var timerBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

type kind int

const (
	counterKind kind = iota
	gaugeKind
	timerKind
)

type series struct {
	kind    kind
	name    string
	labels  []string
	values  []string
	value   float64 // counter or gauge
	count   uint64  // timer
	sum     float64
	buckets []uint64
}

type sdkMetrics struct {
	mu     sync.Mutex
	series map[string]*series
}

func (m *sdkMetrics) get(k kind, name string, tags map[string]string) *series {
	keys := slices.Sorted(maps.Keys(tags))
	id := name
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = tags[k]
		id += "|" + k + "=" + tags[k]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.series[id]
	if !ok {
		s = &series{kind: k, name: sanitize(name), labels: sanitizeAll(keys), values: values, buckets: make([]uint64, len(timerBuckets))}
		m.series[id] = s
	}
	return s
}

func (m *sdkMetrics) Describe(chan<- *prometheus.Desc) {} // unchecked: names appear as the SDK uses them

func (m *sdkMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.series {
		switch s.kind {
		case counterKind:
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(s.name+"_total", "Temporal SDK counter.", s.labels, nil), prometheus.CounterValue, s.value, s.values...)
		case gaugeKind:
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(s.name, "Temporal SDK gauge.", s.labels, nil), prometheus.GaugeValue, s.value, s.values...)
		case timerKind:
			cum := map[float64]uint64{}
			var running uint64
			for i, b := range timerBuckets {
				running += s.buckets[i]
				cum[b] = running
			}
			ch <- prometheus.MustNewConstHistogram(prometheus.NewDesc(s.name+"_seconds", "Temporal SDK timer.", s.labels, nil), s.count, s.sum, cum, s.values...)
		}
	}
}

type sdkHandler struct {
	m    *sdkMetrics
	tags map[string]string
}

func (h sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return sdkHandler{m: h.m, tags: merged}
}

func (h sdkHandler) Counter(name string) client.MetricsCounter {
	s := h.m.get(counterKind, name, h.tags)
	return counterFunc(func(d int64) { h.m.mu.Lock(); s.value += float64(d); h.m.mu.Unlock() })
}

func (h sdkHandler) Gauge(name string) client.MetricsGauge {
	s := h.m.get(gaugeKind, name, h.tags)
	return gaugeFunc(func(v float64) { h.m.mu.Lock(); s.value = v; h.m.mu.Unlock() })
}

func (h sdkHandler) Timer(name string) client.MetricsTimer {
	s := h.m.get(timerKind, name, h.tags)
	return timerFunc(func(d time.Duration) {
		h.m.mu.Lock()
		defer h.m.mu.Unlock()
		s.count++
		s.sum += d.Seconds()
		for i, b := range timerBuckets {
			if d.Seconds() <= b {
				s.buckets[i]++
				break
			}
		}
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func sanitizeAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = sanitize(s)
	}
	return out
}
