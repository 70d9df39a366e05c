package central

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Results of an edge batch request: the label values of
// hearth_central_batches_total.
const (
	BatchOK           = "ok"
	BatchUnauthorized = "unauthorized"
	BatchBadRequest   = "bad_request"
	BatchTooLarge     = "too_large"
	BatchBadEncoding  = "unsupported_encoding"
	BatchBadMethod    = "bad_method"
	BatchUnavailable  = "unavailable"
	BatchFailed       = "error"
	BatchTimeout      = "timeout"      // the body did not arrive within batch_read_timeout
	BatchBusy         = "busy"         // 503: the body budget (max_body_memory) is spent
	BatchRateLimited  = "rate_limited" // 429: the home is over home_batch_rate
	BatchInFlight     = "in_flight"    // 429: the home has home_batches_in_flight batches being served
	BatchThrottled    = "throttled"    // 429: the address presented too many unknown tokens
	BatchShed         = "shed"         // 503: the replica has batches_in_flight batches being served
	BatchDBWait       = "db_wait"      // 503: no database connection came free within db_wait
)

// batchResults are the result labels, for series that exist before their first batch.
var batchResults = []string{BatchOK, BatchUnauthorized, BatchBadRequest, BatchTooLarge, BatchBadEncoding, BatchBadMethod,
	BatchUnavailable, BatchFailed, BatchTimeout, BatchBusy, BatchRateLimited, BatchInFlight, BatchThrottled, BatchShed, BatchDBWait}

// codeNone is the code label of a message that was stored.
const codeNone = "none"

type metrics struct {
	batches      *prometheus.CounterVec
	messages     *prometheus.CounterVec
	applySeconds prometheus.Histogram
	pruned       prometheus.Counter
	pruneErrors  prometheus.Counter
	reads        *prometheus.CounterVec
	limited      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		batches: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_central_batches_total",
			Help: "Edge batch requests, by result (ok, unauthorized, bad_request, too_large, unsupported_encoding, bad_method, unavailable, error, timeout, busy, rate_limited, in_flight, throttled, shed, db_wait).",
		}, []string{"result"}),
		messages: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_central_messages_total",
			Help: "Messages of edge batches answered, by status (ok, rejected) and rejection code (none when stored).",
		}, []string{"status", "code"}),
		applySeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "hearth_central_apply_seconds",
			Help:    "Time to upsert one edge batch into the database (one transaction).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		pruned: f.NewCounter(prometheus.CounterOpts{
			Name: "hearth_central_pruned_rows_total",
			Help: "Rows deleted by the retention job.",
		}),
		pruneErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "hearth_central_prune_errors_total",
			Help: "Retention job runs that failed.",
		}),
		reads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_central_read_requests_total",
			Help: "Read API requests, by HTTP status code.",
		}, []string{"code"}),
		limited: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_central_limited_total",
			Help: "Requests refused by a flood limit, by endpoint (batches, roster, read, phone_http) and limit (memory: 503, the body budget is spent; home_rate, home_in_flight: 429, the home's fairness limits; bad_tokens: 429, the address presented too many unknown tokens; in_flight: 503, the replica serves batches_in_flight batches; db_wait: 503, no database connection within db_wait).",
		}, []string{"endpoint", "limit"}),
	}
	m.preinit()
	return m
}

// preinit creates the labelled series an alert or a rate() reads, at 0,
// so that their first event is an increase, not a new series.
func (m *metrics) preinit() {
	for _, r := range batchResults {
		m.batches.WithLabelValues(r)
	}
	for _, e := range []string{endpointBatches, endpointRoster, endpointRead, endpointPhoneHTTP} {
		for _, l := range allLimits {
			m.limited.WithLabelValues(e, l)
		}
	}
	for _, code := range []string{"200", "400", "401", "403", "404", "500", "503"} {
		m.reads.WithLabelValues(code)
	}
}
