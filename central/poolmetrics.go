package central

import (
	"github.com/guardianai/hearth/central/store"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports the PostgreSQL connection pool's state, read at
// each scrape (SQLite has no pool: nothing is registered).
type poolCollector struct{ p store.Pooled }

var (
	descPoolConns = prometheus.NewDesc("hearth_central_db_pool_connections",
		"Database connections of this replica's pool, by state (idle, acquired: in use, constructing: being dialled).",
		[]string{"state"}, nil)
	descPoolMax = prometheus.NewDesc("hearth_central_db_pool_max_connections",
		"Size of this replica's database pool (max_db_conns).", nil, nil)
	descPoolAcquires = prometheus.NewDesc("hearth_central_db_pool_acquires_total",
		"Connections taken from the pool, by how (immediate: one was idle; waited: the request waited for one or for a dial; canceled: the wait ended first, db_wait or the request's deadline).",
		[]string{"how"}, nil)
	descPoolWait = prometheus.NewDesc("hearth_central_db_pool_wait_seconds_total",
		"Total time requests waited for a database connection.", nil, nil)
	descPoolClosed = prometheus.NewDesc("hearth_central_db_pool_closed_total",
		"Pool connections closed for their age, by reason (lifetime, idle).", []string{"reason"}, nil)
	descPoolDialled = prometheus.NewDesc("hearth_central_db_pool_dials_total",
		"Connections the pool opened.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPoolConns, descPoolMax, descPoolAcquires, descPoolWait, descPoolClosed, descPoolDialled} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.PoolStats()
	g := func(d *prometheus.Desc, t prometheus.ValueType, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, l...)
	}
	g(descPoolConns, prometheus.GaugeValue, float64(s.IdleConns), "idle")
	g(descPoolConns, prometheus.GaugeValue, float64(s.AcquiredConns), "acquired")
	g(descPoolConns, prometheus.GaugeValue, float64(s.ConstructingConns), "constructing")
	g(descPoolMax, prometheus.GaugeValue, float64(s.MaxConns))
	g(descPoolAcquires, prometheus.CounterValue, float64(s.AcquireCount-s.EmptyAcquireCount), "immediate")
	g(descPoolAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount), "waited")
	g(descPoolAcquires, prometheus.CounterValue, float64(s.CanceledAcquireCount), "canceled")
	g(descPoolWait, prometheus.CounterValue, s.AcquireWait.Seconds())
	g(descPoolClosed, prometheus.CounterValue, float64(s.LifetimeClosed), "lifetime")
	g(descPoolClosed, prometheus.CounterValue, float64(s.IdleClosed), "idle")
	g(descPoolDialled, prometheus.CounterValue, float64(s.NewConns))
}

// registerPool exports st's pool when it has one.
func registerPool(reg prometheus.Registerer, st store.Store) {
	if p, ok := st.(store.Pooled); ok {
		reg.MustRegister(poolCollector{p})
	}
}
