package central

import (
	"time"

	"github.com/valyala/fasthttp"
)

// StatusReply is the body of GET /status on the admin listener.
type StatusReply struct {
	Version string `json:"version"`
	Ready   bool   `json:"ready"`
	// NotReady is why /readyz fails; empty when ready.
	NotReady string `json:"not_ready,omitempty"`
	Schema   string `json:"schema"`
	DB       string `json:"db"` // the password hidden
	// Edges is how many homes' edges made a request to this replica since start.
	Edges int       `json:"edges"`
	Now   time.Time `json:"now"`
}

// version is the build's version, "dev" when none was set.
func (s *Server) version() string {
	if s.cfg.Version == "" {
		return "dev"
	}
	return s.cfg.Version
}

func (s *Server) serveStatus(ctx *fasthttp.RequestCtx) {
	r := StatusReply{Version: s.version(), Ready: true, Schema: s.cfg.Schema, DB: RedactDSN(s.cfg.DSN()),
		Edges: len(s.guard.edges.Reports()), Now: time.Now().UTC()}
	if err := s.readiness(); err != nil {
		r.Ready, r.NotReady = false, err.Error()
	}
	writeJSON(ctx, fasthttp.StatusOK, r)
}
