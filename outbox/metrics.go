package outbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the outbox's own instruments; Collector exports them with
// gauges read from Stats. Nothing is registered globally.
type metrics struct {
	commitSeconds prometheus.Histogram
	commitBatch   prometheus.Histogram
	refused       *prometheus.CounterVec
	refusedFull   prometheus.Counter
	refusedClosed prometheus.Counter
	refusedBusy   prometheus.Counter
	writtenBytes  prometheus.Counter
	deadRetried   prometheus.Counter
	deadPurged    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hearth_outbox_commit_seconds",
			Help:    "Time to commit and fsync one group of outbox writes.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. 4 s
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hearth_outbox_commit_batch_messages",
			Help:    "Messages appended per outbox commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 .. 8192
		}),
		writtenBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_outbox_written_bytes_total",
			Help: "Bytes the outbox's commits handed the disk (pages and meta page; what wears flash).",
		}),
		deadRetried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_outbox_dead_retried_total",
			Help: "Dead letters put back in the queue (hearthd deadletters retry, the household page's retry).",
		}),
		deadPurged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_outbox_dead_purged_total",
			Help: "Dead letters deleted, by reason: operator (hearthd deadletters purge), cap (beyond outbox_dead_max_messages), retention (older than the retention window).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_outbox_refused_total",
			Help: "Outbox writes refused, by reason: full (quota or disk), busy (writer queue full) or closed.",
		}, []string{"reason"}),
	}
	m.refusedFull = m.refused.WithLabelValues("full")
	m.refusedClosed = m.refused.WithLabelValues("closed")
	m.refusedBusy = m.refused.WithLabelValues("busy")
	for _, r := range []string{PurgeOperator, PurgeCap, PurgeRetention} {
		m.deadPurged.WithLabelValues(r)
	}
	return m
}

var (
	descPending = prometheus.NewDesc("hearth_outbox_pending_messages",
		"Messages waiting in the outbox to be forwarded.", nil, nil)
	descPendingBytes = prometheus.NewDesc("hearth_outbox_pending_bytes",
		"Size of the pending messages, as counted against the quota.", nil, nil)
	descOldestAge = prometheus.NewDesc("hearth_outbox_oldest_age_seconds",
		"Age of the oldest pending message by its receive time; 0 when empty.", nil, nil)
	descDead = prometheus.NewDesc("hearth_outbox_dead_letters",
		"Messages moved to the dead letters.", nil, nil)
	descFileBytes = prometheus.NewDesc("hearth_outbox_file_bytes",
		"Size of the outbox database file.", nil, nil)
)

// Collector returns the outbox's metrics for the daemon to register on its
// own registry. Gauges are read from Stats at scrape time.
func (o *Outbox) Collector() prometheus.Collector { return collector{o} }

type collector struct{ o *Outbox }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descPendingBytes, descOldestAge, descDead, descFileBytes} {
		ch <- d
	}
	c.o.metrics.commitSeconds.Describe(ch)
	c.o.metrics.commitBatch.Describe(ch)
	c.o.metrics.refused.Describe(ch)
	c.o.metrics.writtenBytes.Describe(ch)
	c.o.metrics.deadRetried.Describe(ch)
	c.o.metrics.deadPurged.Describe(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.o.Stats()
	age := 0.0
	if !s.OldestReceivedAt.IsZero() {
		age = max(c.o.opts.Now().Sub(s.OldestReceivedAt), time.Duration(0)).Seconds()
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(descPending, float64(s.Depth))
	gauge(descPendingBytes, float64(s.Bytes))
	gauge(descOldestAge, age)
	gauge(descDead, float64(s.DeadLetters))
	gauge(descFileBytes, float64(s.FileBytes))
	c.o.metrics.commitSeconds.Collect(ch)
	c.o.metrics.commitBatch.Collect(ch)
	c.o.metrics.refused.Collect(ch)
	c.o.metrics.writtenBytes.Collect(ch)
	c.o.metrics.deadRetried.Collect(ch)
	c.o.metrics.deadPurged.Collect(ch)
}
