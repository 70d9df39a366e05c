package admin

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo is the collector of hearth_build_info: a constant 1 labelled
// with the program (hearthd, hearth-central), its version, and the Go
// version and architecture it was built for — the same series on both
// servers, so one query finds every build in the fleet and an alert can
// notice mixed versions.
func BuildInfo(component, version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hearth_build_info",
		Help: "Always 1; the labels name the program, its version, and the Go version and architecture it was built for.",
		ConstLabels: prometheus.Labels{
			"component": component,
			"version":   version,
			"goversion": runtime.Version(),
			"goarch":    runtime.GOARCH,
		},
	})
	g.Set(1)
	return g
}
