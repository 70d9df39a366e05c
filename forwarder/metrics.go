package forwarder

import "github.com/prometheus/client_golang/prometheus"

// metrics are the forwarder's Prometheus series.
type metrics struct {
	batches        *prometheus.CounterVec
	messages       *prometheus.CounterVec
	lastSuccess    prometheus.Gauge
	backoff        prometheus.Gauge
	unauthorized   prometheus.Gauge
	rosterChildren prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_forward_batches_total",
			Help: "Batches sent to central by outcome: ok, rejected (some messages dead-lettered), retry (429/5xx/network/missing results), split (413), unauthorized (401/403), error (400 or another refusal; kept).",
		}, []string{"result"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_forward_messages_total",
			Help: "Messages central answered for: ok (stored, deleted from the outbox) or rejected (moved to the dead letters).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_last_success_timestamp_seconds",
			Help: "Unix time of the last batch central answered with results.",
		}),
		backoff: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_backoff_seconds",
			Help: "Current wait before the next send after a failure (0 while sending normally).",
		}),
		unauthorized: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_unauthorized",
			Help: "1 while central refuses this edge's token (401/403): forwarding is stopped until central_token is fixed.",
		}),
		rosterChildren: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_roster_children",
			Help: "Children in the roster last synced from central (or its cache).",
		}),
	}
	for _, r := range []string{resultOK, resultRejected, resultRetry, resultThrottled, resultSplit, resultUnauthorized, resultError} {
		m.batches.WithLabelValues(r)
	}
	m.messages.WithLabelValues(resultOK)
	m.messages.WithLabelValues(resultRejected)
	reg.MustRegister(m.batches, m.messages, m.lastSuccess, m.backoff, m.unauthorized, m.rosterChildren)
	return m
}

func (m *metrics) setUnauthorized(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.unauthorized.Set(v)
}
