package ingest

import (
	"net"

	"github.com/guardianai/hearth/internal/netguard"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/valyala/fasthttp"
)

// slowClientDefaults fills the slow-client limits; the pending caps follow
// the WebSocket caps so that central's carrier-NAT sizing (many phones
// behind one address) carries over without a setting of its own.
func (c Config) slowClientDefaults(d Config) Config {
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = d.HeaderTimeout
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = d.BodyTimeout
	}
	if c.MinBodyRate <= 0 {
		c.MinBodyRate = d.MinBodyRate
	}
	if c.BodyGrace <= 0 {
		c.BodyGrace = d.BodyGrace
	}
	if c.MaxPending <= 0 {
		c.MaxPending = max(256, c.MaxConns/4)
	}
	if c.MaxPendingPerIP <= 0 {
		c.MaxPendingPerIP = c.MaxConnsPerIP
	}
	return c
}

// newGuard builds the admission guard of the server's listeners; what it
// refuses or evicts is counted with transport "tcp".
func (s *Server) newGuard(reg prometheus.Registerer) *netguard.Guard {
	g := netguard.New(netguard.Limits{
		MaxPending:        s.cfg.MaxPending,
		MaxPendingPerAddr: s.cfg.MaxPendingPerIP,
		MinRate:           s.cfg.MinBodyRate,
		Grace:             s.cfg.HeaderTimeout + s.cfg.BodyGrace,
		RetryAfter:        s.cfg.RetryAfter,
	}, func(reason string) { s.metrics.refuse(reason, "tcp") })
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_ingest_pending_connections",
		Help: "Connections that are not an established WebSocket: requests being read, idle keep-alive, WebSockets before auth.",
	}, func() float64 { return float64(g.Pending()) })
	return g
}

// GuardListener wraps the listener phones connect to: connections are
// admitted at accept, before the HTTP server spends a worker on them
// (pending caps per address and in all, with a fair share for every
// address; refusals answered 503 + Retry-After), and requests are held to
// MinBodyRate. Serve the returned listener with a server set up by
// GuardServer.
func (s *Server) GuardListener(ln net.Listener) net.Listener { return s.guard.Listen(ln) }

// GuardListenerBelowTLS is GuardListener for a listener that is then
// wrapped by tls.NewListener: refused connections are closed without a
// plain-text 503, which a TLS client could not read.
func (s *Server) GuardListenerBelowTLS(ln net.Listener) net.Listener {
	return s.guard.ListenBelowTLS(ln)
}

// GuardServer sets the read limits of srv for slow clients: headers within
// HeaderTimeout, then BodyTimeout for the body (the guarded listener's
// rate floor usually ends a slow one sooner). A HeaderReceived already set
// (central's edge batches) keeps its own read timeout. fasthttp's own
// per-address cap, which counts IPv4 only and answers from its accept
// loop, stays as a backstop above the guard's.
func (s *Server) GuardServer(srv *fasthttp.Server) {
	srv.ReadTimeout = s.cfg.HeaderTimeout
	inner, body := srv.HeaderReceived, s.cfg.BodyTimeout
	srv.HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		var rc fasthttp.RequestConfig
		if inner != nil {
			rc = inner(h)
		}
		if rc.ReadTimeout <= 0 {
			rc.ReadTimeout = body
		}
		return rc
	}
	srv.MaxConnsPerIP = s.cfg.MaxConnsPerIP + s.cfg.MaxPendingPerIP + 8
	if srv.Concurrency != 0 && srv.Concurrency < 2*s.cfg.MaxPending {
		srv.Concurrency = 2 * s.cfg.MaxPending // pending connections each hold a worker
	}
}

// Pending returns the connections admitted and not yet an established
// WebSocket.
func (s *Server) Pending() int { return s.guard.Pending() }

// guardConn finds the guarded connection a request arrived on (nil when
// the listener is not guarded).
func (s *Server) guardConn(ctx *fasthttp.RequestCtx) *netguard.Conn {
	return s.guard.Lookup(ctx.LocalAddr(), ctx.RemoteAddr())
}
