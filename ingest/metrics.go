package ingest

import (
	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/netguard"
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
	ReasonInvalidUTF8     = "invalid_utf8"
	ReasonTooSlow         = "too_slow" // a request below the minimum body rate

	// Connections refused or closed at accept by the guard (transport "tcp").
	ReasonPendingIPLimit = netguard.ReasonAddrLimit
	ReasonPendingLimit   = netguard.ReasonLimit
	ReasonEvicted        = netguard.ReasonEvicted
)

// Codes of error replies ("code"): what a client does with the data.
// retry_later and rate_limited mean keep it and resend (after
// "retry_after" seconds); every other code means it can never be stored
// as sent, so the phone may drop it.
const (
	CodeMalformed        = "malformed"
	CodeTooLarge         = "too_large"
	CodeUnknownType      = hearth.CodeUnknownType
	CodeInvalid          = hearth.CodeInvalid
	CodeTooOld           = hearth.CodeTooOld
	CodeFuture           = hearth.CodeFuture
	CodeUnknownChild     = "unknown_child"
	CodeChildMismatch    = hearth.CodeChildMismatch
	CodeNotAuthenticated = "not_authenticated"
	CodeRateLimited      = "rate_limited"
	CodeRetryLater       = "retry_later"
)

// codeFor maps a refusal reason (a metric label) to its reply code.
func codeFor(reason string) string {
	switch reason {
	case ReasonMalformed, ReasonBinary, ReasonBadBody, ReasonBadMethod, ReasonInvalidUTF8:
		return CodeMalformed
	case ReasonTooLarge:
		return CodeTooLarge
	case ReasonUnknownType:
		return CodeUnknownType
	case ReasonTooOld:
		return CodeTooOld
	case ReasonFuture:
		return CodeFuture
	case ReasonUnknownChild, ReasonBadChildHash:
		return CodeUnknownChild
	case ReasonChildMismatch:
		return CodeChildMismatch
	case ReasonNotAuth, ReasonAuthMissingHash:
		return CodeNotAuthenticated
	case ReasonRateLimited:
		return CodeRateLimited
	case ReasonFull, ReasonUnavailable, ReasonConnLimit, ReasonIPLimit, ReasonShuttingDown, ReasonTimeout,
		ReasonTooSlow, ReasonPendingIPLimit, ReasonPendingLimit, ReasonEvicted:
		return CodeRetryLater
	}
	return CodeInvalid
}

// Metrics are the device-protocol metrics of one server.
type Metrics struct {
	connections   prometheus.Gauge
	accepted      *prometheus.CounterVec
	reconnections prometheus.Counter
	messages      *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	ackSeconds    *prometheus.HistogramVec
	notes         *prometheus.CounterVec
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
			Help: "Frames, requests and connections refused, by reason and transport (ws, http; tcp: at accept, before any request).",
		}, []string{"reason", "transport"}),
		httpRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_ingest_http_requests_total",
			Help: "HTTP fallback requests (POST /api/ingest/), by status code.",
		}, []string{"code"}),
		notes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_ingest_notes_total",
			Help: "Items of accepted messages that were skipped (action=ignored) or normalised, as the seed system did, by type and reason.",
		}, []string{"type", "reason", "action"}),
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

// refusedChild tells the Refused hook of a refusal naming child.
func (s *Server) refusedChild(child, reason string) {
	if s.cfg.Refused != nil && child != "" {
		s.cfg.Refused(child, reason)
	}
}

// noted counts the notes of an accepted message.
func (m *Metrics) noted(c *hearth.Checked) {
	for _, n := range c.Notes {
		action := "normalised"
		if n.Ignored {
			action = "ignored"
		}
		m.notes.WithLabelValues(string(c.Kind), n.Reason, action).Inc()
	}
}
