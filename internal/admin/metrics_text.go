//go:build textmetrics

package admin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"
)

// textFormat is Prometheus' text exposition format, which every
// Prometheus version scrapes.
var textFormat = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// metricsHandler serves reg in the text format only, written straight
// into fasthttp's response: the router build (-tags textmetrics) leaves
// out promhttp and the net/http adaptor, 0.39 MB of a router's flash
// (bench/RESULTS.md). No OpenMetrics or protobuf negotiation, no gzip:
// hearthd's metrics are a few KiB.
func metricsHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		mfs, err := reg.Gather()
		if err != nil {
			ctx.Error("gathering metrics failed: "+err.Error()+"\n", fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType(textFormat)
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(ctx, mf); err != nil {
				ctx.ResetBody()
				ctx.Error("encoding metrics failed: "+err.Error()+"\n", fasthttp.StatusInternalServerError)
				return
			}
		}
	}
}
