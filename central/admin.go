package central

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	})
}

// readiness is nil while the listeners are up and the database answers.
func (s *Server) readiness() error {
	if !s.ready.Load() {
		return errors.New("starting or shutting down")
	}
	pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(pctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}
