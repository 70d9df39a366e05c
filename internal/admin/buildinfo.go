package admin

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is the collector of hearth_build_info: a constant 1 labelled
// with the binary's version, so a dashboard can show which version each
// server runs and an alert can notice a fleet on mixed versions.
func BuildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hearth_build_info",
		Help: "Always 1; the labels name this binary's version, Go version and architecture.",
		ConstLabels: prometheus.Labels{
			"version":   version,
			"goversion": runtime.Version(),
			"goarch":    runtime.GOARCH,
		},
	})
	g.Set(1)
	return g
}
