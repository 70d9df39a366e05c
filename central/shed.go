package central

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/guardianai/hearth/central/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Load shedding: a replica takes what its database connections can serve
// and answers the rest 503 + Retry-After at once, so that an edge keeps
// its data and retries, rather than central queueing without bound and
// every batch timing out together. Two limits do it:
//
//   - batches_in_flight: the batches one replica serves at once, all homes
//     together, counted from admission to reply; the rest are refused
//     before their body is read.
//   - db_wait: how long a request waits for a database connection (the
//     store's pool: Options.ConnWait); longer is store.ErrBusy.
//
// Defaults (bench/RESULTS.md, "Central at scale"): 64 batches in flight
// keeps the pool's connections busy with room for the bodies being read
// and decoded, within the 64 MiB body budget for ordinary batches; 1 s of
// wait is several times a batch's p99 apply on PostgreSQL, so only a
// database that stopped keeping up sheds.
const (
	defaultBatchesInFlight = 64
	defaultDBWait          = time.Second
)

// inFlight counts the batches being served by this replica.
type inFlight struct {
	max int64
	n   atomic.Int64
}

// enter admits one batch, or refuses it when max are in flight.
func (f *inFlight) enter() *refusal {
	if f.n.Add(1) > f.max {
		f.n.Add(-1)
		return &refusal{status: 503, limit: limitInFlight, retryAfter: busyRetryAfter,
			reason: "central is busy (this replica serves batches_in_flight batches already); retry later"}
	}
	return nil
}

func (f *inFlight) leave() { f.n.Add(-1) }

// dbBusy is the refusal of a request that waited db_wait for a database
// connection, or nil when err is something else.
func dbBusy(err error, retryAfter time.Duration) *refusal {
	if !errors.Is(err, store.ErrBusy) {
		return nil
	}
	return &refusal{status: 503, limit: limitDBWait, retryAfter: retryAfter,
		reason: "central is busy (no database connection came free within db_wait); retry later"}
}

func (f *inFlight) gauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_central_batches_in_flight",
		Help: "Edge batches this replica is serving now; at most batches_in_flight.",
	}, func() float64 { return float64(f.n.Load()) })
}
