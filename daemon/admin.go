package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Status is the JSON of GET /status.
type Status struct {
	Connections            int     `json:"connections"`
	OutboxDepth            int64   `json:"outbox_depth"`
	OutboxBytes            int64   `json:"outbox_bytes"`
	OutboxOldestAgeSeconds float64 `json:"outbox_oldest_age_seconds"`
	OutboxFileBytes        int64   `json:"outbox_file_bytes"`
	DeadLetters            int64   `json:"dead_letters"`
	ClockTrusted           bool    `json:"clock_trusted"`
	UptimeSeconds          float64 `json:"uptime_seconds"`
	Ready                  bool    `json:"ready"`
}

// Status reports the daemon's state.
func (d *Daemon) Status() Status {
	st := d.outbox.Stats()
	s := Status{
		Connections:     d.ingest.Connections(),
		OutboxDepth:     st.Depth,
		OutboxBytes:     st.Bytes,
		OutboxFileBytes: st.FileBytes,
		DeadLetters:     st.DeadLetters,
		ClockTrusted:    !time.Now().Before(clockFloor),
		UptimeSeconds:   time.Since(d.started).Seconds(),
		Ready:           d.ready.Load(),
	}
	if !st.OldestReceivedAt.IsZero() {
		s.OutboxOldestAgeSeconds = max(0, time.Since(st.OldestReceivedAt).Seconds())
	}
	return s
}

func (d *Daemon) adminServer() *fasthttp.Server {
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	return &fasthttp.Server{
		Name:                  "hearthd-admin",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		NoDefaultServerHeader: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			switch string(ctx.Path()) {
			case "/metrics":
				metrics(ctx)
			case "/healthz":
				ctx.SetBodyString("ok\n")
			case "/readyz":
				d.serveReady(ctx)
			case "/status":
				ctx.SetContentType("application/json")
				b, _ := json.Marshal(d.Status())
				ctx.SetBody(append(b, '\n'))
			default:
				if strings.HasPrefix(string(ctx.Path()), "/debug/pprof/") {
					pprofHandler(ctx)
					return
				}
				ctx.Error("not found: try /status, /metrics, /healthz or /readyz", fasthttp.StatusNotFound)
			}
		},
	}
}

// serveReady answers 200 while the listeners are up and the outbox is open.
func (d *Daemon) serveReady(ctx *fasthttp.RequestCtx) {
	if !d.ready.Load() {
		ctx.Error("not ready: starting or shutting down\n", fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetBodyString("ready\n")
}

// pprofHandler serves Go's profiles on the admin listener (loopback by
// default): how an operator finds where a slow box spends its time.
var pprofHandler = fasthttpadaptor.NewFastHTTPHandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	default:
		pprof.Index(w, r)
	}
})
