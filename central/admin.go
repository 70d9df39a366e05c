package central

import (
	"github.com/guardianai/hearth/central/console"
	"github.com/guardianai/hearth/internal/admin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Registry is the server's metrics registry (for tests and embedding).
func (s *Server) Registry() prometheus.Gatherer { return s.reg }

// adminServer serves the operator: metrics, health, /status, profiles
// when enabled, and the console at every other path.
func (s *Server) adminServer() *fasthttp.Server {
	return admin.NewServer(admin.Options{
		Name:     "hearth-central-admin",
		Registry: s.reg,
		Ready:    s.readiness,
		Log:      s.log,
		Pprof:    s.cfg.Pprof,
		Routes:   map[string]fasthttp.RequestHandler{"/status": s.serveStatus, "/fleet": s.serveFleet},
		Fallback: s.console().Handle,
	})
}

// console is the operator's pages, logged into with the admin token.
func (s *Server) console() *console.Console {
	var isAdmin func(string) bool
	if s.cfg.AdminToken != "" {
		isAdmin = s.isAdmin
	}
	return console.New(console.Options{
		Store:        s.store,
		IsAdmin:      isAdmin,
		Live:         s.LiveEdges,
		Log:          s.log,
		Registry:     s.reg,
		Version:      s.version(),
		StoreTimeout: s.cfg.StoreTimeout,
	})
}
