package central

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Registry is the server's metrics registry (for tests and embedding).
func (s *Server) Registry() prometheus.Gatherer { return s.reg }

func (s *Server) adminServer() *fasthttp.Server {
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return &fasthttp.Server{
		Name:                  "hearth-central-admin",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		NoDefaultServerHeader: true,
		Logger:                slogPrinter{s.log},
		Handler: func(ctx *fasthttp.RequestCtx) {
			switch string(ctx.Path()) {
			case "/metrics":
				metrics(ctx)
			case "/healthz":
				ctx.SetBodyString("ok\n")
			case "/readyz":
				s.serveReady(ctx)
			default:
				ctx.Error("not found: try /metrics, /healthz or /readyz", fasthttp.StatusNotFound)
			}
		},
	}
}

// serveReady answers 200 while the listeners are up and the database answers.
func (s *Server) serveReady(ctx *fasthttp.RequestCtx) {
	if !s.ready.Load() {
		ctx.Error("not ready: starting or shutting down\n", fasthttp.StatusServiceUnavailable)
		return
	}
	pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(pctx); err != nil {
		ctx.Error("not ready: database: "+err.Error()+"\n", fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetBodyString("ready\n")
}
