package central

import (
	"github.com/guardianai/hearth/internal/admin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Registry is the server's metrics registry (for tests and embedding).
func (s *Server) Registry() prometheus.Gatherer { return s.reg }

func (s *Server) adminServer() *fasthttp.Server {
	return admin.NewServer(admin.Options{
		Name:     "hearth-central-admin",
		Registry: s.reg,
		Ready:    s.readiness,
		Log:      s.log,
		Pprof:    s.cfg.Pprof,
	})
}
