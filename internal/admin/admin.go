// Package admin serves the operator's listener of hearthd and hearth-central
// (/metrics, /healthz, /readyz, Go profiles when enabled, plus a program's
// own routes) and routes fasthttp's log lines into slog.
package admin

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Options describe an admin server.
type Options struct {
	Name     string               // server name, e.g. "hearthd-admin"
	Registry *prometheus.Registry // served on /metrics
	// Ready reports why the program cannot serve yet (nil when it can);
	// /readyz answers 503 with that reason.
	Ready  func() error
	Routes map[string]fasthttp.RequestHandler // extra exact paths, e.g. /status
	// Fallback serves every other path (hearth-central's console); nil
	// answers 404 listing the paths there are.
	Fallback fasthttp.RequestHandler
	Log      *slog.Logger
	// Pprof serves Go's profiles under /debug/pprof/. Off by default: a
	// profile shows what the program is doing, and the admin listener may be
	// reachable by more than the operator (--pprof or pprof: true enables it).
	Pprof bool
}

// PprofOff is the answer under /debug/pprof/ while profiles are off.
const PprofOff = "Go profiles are off: start with --pprof (or pprof: true in the configuration) to serve them"

// NewServer returns the admin fasthttp server.
func NewServer(o Options) *fasthttp.Server {
	metrics := metricsHandler(o.Registry)
	paths := []string{"/metrics", "/healthz", "/readyz"}
	if o.Pprof && PprofBuilt {
		paths = append(paths, "/debug/pprof/")
	}
	for p := range o.Routes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	notFound := "not found: try " + strings.Join(paths, ", ")
	return &fasthttp.Server{
		Name:                  o.Name,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          time.Minute, // a CPU profile takes 30 s
		NoDefaultServerHeader: true,
		Logger:                FasthttpLogger(o.Log),
		Handler: func(ctx *fasthttp.RequestCtx) {
			path := string(ctx.Path())
			switch {
			case path == "/metrics":
				metrics(ctx)
			case path == "/healthz":
				ctx.SetBodyString("ok\n")
			case path == "/readyz":
				serveReady(ctx, o.Ready)
			case o.Routes[path] != nil:
				o.Routes[path](ctx)
			case strings.HasPrefix(path, "/debug/pprof/") && o.Pprof:
				pprofHandler(ctx)
			case strings.HasPrefix(path, "/debug/pprof/"):
				ctx.Error(PprofOff, fasthttp.StatusNotFound)
			case o.Fallback != nil:
				o.Fallback(ctx)
			default:
				ctx.Error(notFound, fasthttp.StatusNotFound)
			}
		},
	}
}

func serveReady(ctx *fasthttp.RequestCtx, ready func() error) {
	if err := ready(); err != nil {
		ctx.Error("not ready: "+err.Error()+"\n", fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetBodyString("ready\n")
}

// FasthttpLogger routes fasthttp's log lines into log at WARN.
func FasthttpLogger(log *slog.Logger) fasthttp.Logger {
	if log == nil {
		log = slog.Default()
	}
	return printer{log}
}

type printer struct{ log *slog.Logger }

func (p printer) Printf(format string, args ...any) {
	p.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
