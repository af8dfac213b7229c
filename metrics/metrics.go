// Package metrics holds Handoff's Prometheus metrics. Labels carry routes,
// outcomes and opaque clinic ids: never patient data.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/handoff-telehealth/handoff/store"
)

// Registry is one process's metrics. A nil *Registry records nothing.
type Registry struct {
	reg          *prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpLatency  *prometheus.HistogramVec
	transfers    *prometheus.CounterVec
	sseClients   prometheus.Gauge

	once sync.Once
	sdk  *sdkMetrics
}

// New makes a registry with the Go runtime's own metrics.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_http_requests_total", Help: "API requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "handoff_http_request_duration_seconds", Help: "API request latency by route pattern.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_transfers_total", Help: "Transfers by outcome: completed, or compensated (the patient went back).",
		}, []string{"outcome"}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_sse_clients", Help: "Open live-event streams.",
		}),
	}
	r.reg.MustRegister(r.httpRequests, r.httpLatency, r.transfers, r.sseClients,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the metrics in Prometheus text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// ObserveRequest records one API request.
func (r *Registry) ObserveRequest(route, method string, status int, took time.Duration) {
	if r == nil {
		return
	}
	if route == "" {
		route = "other"
	}
	r.httpRequests.WithLabelValues(route, method, http.StatusText(status)).Inc()
	r.httpLatency.WithLabelValues(route, method).Observe(took.Seconds())
}

// Transfer counts a transfer's outcome.
func (r *Registry) Transfer(outcome string) {
	if r != nil {
		r.transfers.WithLabelValues(outcome).Inc()
	}
}

// SSEClient adds delta open streams.
func (r *Registry) SSEClient(delta float64) {
	if r != nil {
		r.sseClients.Add(delta)
	}
}

// WatchWaiting adds a gauge of waiting visits per clinic, read from the
// database at each scrape.
func (r *Registry) WatchWaiting(db *store.DB) {
	r.reg.MustRegister(&waitingCollector{db: db, desc: prometheus.NewDesc("handoff_waiting_visits",
		"Visits waiting in a waiting room, by clinic id.", []string{"clinic_id"}, nil)})
}

type waitingCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

func (c *waitingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *waitingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	waiting, err := c.db.With(ctx).Visits.WaitingByClinic()
	if err != nil {
		return
	}
	for clinicID, n := range waiting {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), clinicID)
	}
}
