package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Refusal reasons: the label values of hearth_ingest_refusals_total. Every
// refusal the protocol makes carries one of them.
const (
	ReasonMalformed       = "malformed_frame"
	ReasonBinary          = "binary_frame"
	ReasonTooLarge        = "too_large"
	ReasonUnknownType     = "unknown_type"
	ReasonInvalid         = "invalid"
	ReasonTooOld          = "too_old"
	ReasonFuture          = "future"
	ReasonUnknownChild    = "unknown_child"
	ReasonBadChildHash    = "bad_child_hash"
	ReasonChildMismatch   = "child_mismatch"
	ReasonNotAuth         = "not_authenticated"
	ReasonAuthMissingHash = "auth_missing_hash"
	ReasonRateLimited     = "rate_limited"
	ReasonFull            = "full"
	ReasonUnavailable     = "unavailable"
	ReasonConnLimit       = "conn_limit"
	ReasonIPLimit         = "ip_limit"
	ReasonShuttingDown    = "shutting_down"
	ReasonBadBody         = "bad_body"
	ReasonBadMethod       = "bad_method"
	ReasonTimeout         = "timeout"
)

// Metrics are the device-protocol metrics of one server.
type Metrics struct {
	connections   prometheus.Gauge
	accepted      *prometheus.CounterVec
	reconnections prometheus.Counter
	messages      *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	ackSeconds    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		connections: f.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_ingest_connections",
			Help: "Open WebSocket connections from phones.",
		}),
		accepted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_ingest_connections_total",
			Help: "WebSocket connections accepted, by endpoint (direct, auth).",
		}, []string{"endpoint"}),
		reconnections: f.NewCounter(prometheus.CounterOpts{
			Name: "hearth_ingest_reconnections_total",
			Help: "WebSocket connections from a child that had disconnected within the last 10 minutes.",
		}),
		messages: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_ingest_messages_total",
			Help: "Data messages acknowledged, by type and transport (ws, http).",
		}, []string{"type", "transport"}),
		refusals: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_ingest_refusals_total",
			Help: "Frames, requests and connections refused, by reason and transport.",
		}, []string{"reason", "transport"}),
		httpRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_ingest_http_requests_total",
			Help: "HTTP fallback requests (POST /api/ingest/), by status code.",
		}, []string{"code"}),
		ackSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hearth_ingest_ack_seconds",
			Help:    "Time from receiving a data message to acknowledging it (includes the durable commit).",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"transport"}),
	}
}

func (m *Metrics) refuse(reason, transport string) {
	m.refusals.WithLabelValues(reason, transport).Inc()
}
