package central

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons the read API refuses a token: the label values of
// hearth_central_read_refused_total.
const (
	ReadRefusedNoToken      = "missing_token"
	ReadRefusedUnknownToken = "unknown_token"
	ReadRefusedHomeToken    = "home_token"    // a home token: it sends batches, it does not read
	ReadRefusedForeignChild = "foreign_child" // a reader token asking for another home's child
	ReadRefusedUnknownChild = "unknown_child" // the admin token asking for a child no home has
)

// opsMetrics are the operator's view of what production depends on:
// listeners, the database taking writes, the TLS certificate, refused
// readers.
type opsMetrics struct {
	listenerUp  *prometheus.GaugeVec
	dbWritable  prometheus.Gauge
	tlsNotAfter prometheus.Gauge
	tlsReloads  *prometheus.CounterVec
	readRefused *prometheus.CounterVec
}

// newOpsMetrics registers the metrics on reg; the certificate's expiry
// only when withTLS.
func newOpsMetrics(reg prometheus.Registerer, withTLS bool) *opsMetrics {
	f := promauto.With(reg)
	m := &opsMetrics{
		listenerUp: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hearth_central_listener_up",
			Help: "1 while the listener (public, admin) serves; 0 once it stopped outside a shutdown (/readyz fails).",
		}, []string{"listener"}),
		dbWritable: f.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_central_db_writable",
			Help: "1 when the last write probe (a heartbeat row, every db_probe_interval) succeeded; 0 makes /readyz fail.",
		}),
		tlsReloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_central_tls_reloads_total",
			Help: "TLS certificate reloads on SIGHUP, by result (ok, error: the previous certificate is still served).",
		}, []string{"result"}),
		readRefused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_central_read_refused_total",
			Help: "Read API requests refused for their token, by reason (missing_token, unknown_token, home_token, foreign_child, unknown_child).",
		}, []string{"reason"}),
	}
	m.tlsNotAfter = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hearth_central_tls_cert_not_after_timestamp_seconds",
		Help: "Expiry (Unix time) of the TLS certificate served on the public listener; absent without TLS.",
	})
	if withTLS {
		reg.MustRegister(m.tlsNotAfter)
	}
	return m
}
