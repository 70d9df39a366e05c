package forwarder

import "github.com/prometheus/client_golang/prometheus"

// metrics are the forwarder's Prometheus series.
type metrics struct {
	batches        *prometheus.CounterVec
	messages       *prometheus.CounterVec
	lastSuccess    prometheus.Gauge
	backoff        prometheus.Gauge
	unauthorized   prometheus.Gauge
	refused        prometheus.Gauge
	rosterChildren prometheus.Gauge
	nextRetry      prometheus.Gauge
	rateCap        prometheus.Gauge
	deadLettered   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_forward_batches_total",
			Help: "Batches sent to central by outcome: ok, rejected (some messages dead-lettered), retry (5xx/network/missing results), throttled (429), split (413), unauthorized (401/403), refused (400 or another 4xx: the whole batch; kept), error (an unusable answer, or the outbox unreadable; kept).",
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
		refused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_refused",
			Help: "1 while central refuses whole batches (400 or another 4xx, state refused): nothing is dropped, each is tried again every forward_max_backoff.",
		}),
		nextRetry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_next_retry_timestamp_seconds",
			Help: "Unix time of the next try while waiting after a failure; 0 otherwise.",
		}),
		rateCap: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_rate_cap_messages_per_second",
			Help: "The send rate a backlog older than forward_replay_age is held to now (forward_max_rate); 0 when none applies.",
		}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_forward_dead_lettered_total",
			Help: "Messages the forwarder moved to the dead letters, by reason code (central's rejection code, too_large, poison).",
		}, []string{"code"}),
		rosterChildren: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_forward_roster_children",
			Help: "Children in the roster last synced from central (or its cache).",
		}),
	}
	for _, r := range []string{resultOK, resultRejected, resultRetry, resultThrottled, resultSplit, resultUnauthorized, resultRefused, resultError} {
		m.batches.WithLabelValues(r)
	}
	m.messages.WithLabelValues(resultOK)
	m.messages.WithLabelValues(resultRejected)
	reg.MustRegister(m.batches, m.messages, m.lastSuccess, m.backoff, m.unauthorized, m.refused, m.rosterChildren,
		m.nextRetry, m.rateCap, m.deadLettered)
	return m
}

func (m *metrics) setRefused(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.refused.Set(v)
}

func (m *metrics) setUnauthorized(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.unauthorized.Set(v)
}
