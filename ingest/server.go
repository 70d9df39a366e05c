package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/netguard"
	"github.com/guardianai/hearth/internal/svc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Config sets the limits of the device protocol. Zero values take the defaults
// of DefaultConfig.
type Config struct {
	MaxFrameBytes int           // largest text frame or HTTP body accepted
	MaxConns      int           // open WebSockets; more get 503 before the upgrade
	MaxConnsPerIP int           // open WebSockets per client address (IPv4 address or IPv6 /64)
	RatePerSecond float64       // data frames per connection per second
	RateBurst     int           // frames a connection may send at once above the rate
	PingInterval  time.Duration // the server pings connections this often
	IdleTimeout   time.Duration // a connection silent this long (no frame, no pong) is closed
	WriteTimeout  time.Duration // a reply not written in this time closes the connection
	AuthTimeout   time.Duration // the auth flow must authenticate within this
	Pipeline      int           // frames in flight per connection before reading pauses
	RetryAfter    time.Duration // advised in Retry-After when the sink is full or down
	StoreTimeout  time.Duration // a Store call taking longer answers "unavailable"

	// Slow clients. A connection that is not an established WebSocket
	// (a request being read, idle keep-alive, the auth flow before auth) is
	// "pending": GuardListener caps those at accept, per address and in
	// all (0: MaxConnsPerIP and max(256, MaxConns/4)).
	MaxPending      int
	MaxPendingPerIP int
	HeaderTimeout   time.Duration // request line and headers must arrive within this (GuardServer)
	BodyTimeout     time.Duration // the most a request body may take after its headers (GuardServer)
	MinBodyRate     int           // bytes/s a request must average once HeaderTimeout+BodyGrace passed (GuardListener)
	BodyGrace       time.Duration

	// Window is the time window data is judged against now (its Now is
	// the reference time: when a message is received, on central's clock).
	Window func() hearth.Window
	// Clock stamps a received message: its received_at and whether that
	// is on central's clock (hearth.Message.Synced).
	Clock           func() (time.Time, bool)
	ConnectionLabel string // name used in connection_established messages
	// Refused, when set, learns each refusal of a message or connection
	// that names a child (the hash it claims for unknown_child), with the
	// reason: the household page shows them per child. It must be cheap.
	Refused func(child, reason string)
}

// DefaultConfig returns the limits a home router can afford.
func DefaultConfig() Config {
	return Config{
		MaxFrameBytes: 64 << 10,
		MaxConns:      1000,
		MaxConnsPerIP: 32,
		HeaderTimeout: 5 * time.Second,
		BodyTimeout:   2 * time.Minute,
		MinBodyRate:   1 << 10,
		BodyGrace:     5 * time.Second,
		RatePerSecond: 200,
		RateBurst:     401, // 2×rate+1, as Limits.Config computes it
		PingInterval:  30 * time.Second,
		IdleTimeout:   90 * time.Second,
		WriteTimeout:  10 * time.Second,
		AuthTimeout:   10 * time.Second,
		Pipeline:      16,
		RetryAfter:    30 * time.Second,
		StoreTimeout:  30 * time.Second,
		Window:        func() hearth.Window { return hearth.Window{} },
		Clock:         func() (time.Time, bool) { return time.Now().UTC(), false },
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = d.MaxConnsPerIP
	}
	c = c.slowClientDefaults(d)
	if c.RatePerSecond <= 0 {
		c.RatePerSecond = d.RatePerSecond
	}
	if c.RateBurst <= 0 {
		c.RateBurst = d.RateBurst
	}
	if c.PingInterval <= 0 {
		c.PingInterval = d.PingInterval
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = d.AuthTimeout
	}
	if c.Pipeline <= 0 {
		c.Pipeline = d.Pipeline
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = d.RetryAfter
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = d.StoreTimeout
	}
	if c.Window == nil {
		c.Window = d.Window
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.ConnectionLabel == "" {
		c.ConnectionLabel = "hearth"
	}
	return c
}

// Server serves the device protocol. Mount Handle in a fasthttp server.
type Server struct {
	sink     Sink
	roster   Roster
	cfg      Config
	log      *slog.Logger
	metrics  *Metrics
	upgrader websocket.FastHTTPUpgrader
	conns    *registry
	recent   *recentChildren
	stopPing chan struct{}
	stopOnce sync.Once
	drainers *drainers       // write the sessions' replies
	guard    *netguard.Guard // admits connections at accept (GuardListener)
	warn     svc.LogLimiter  // "retry later" warnings: a flood of them must not fill a router's disk
}

// warnRetry logs why phones are told to retry later, at most every 10 s.
func (s *Server) warnRetry(msg, child string, err error) {
	if ok, held := s.warn.Allow(10 * time.Second); ok {
		s.log.Warn(msg, "child", shortHash(child), "err", err, "similar_lines_held_back", held)
	}
}

// New returns a Server writing to sink and checking children against roster.
// Its metrics are registered on reg.
func New(sink Sink, roster Roster, cfg Config, reg prometheus.Registerer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	s := &Server{
		sink:     sink,
		roster:   roster,
		cfg:      cfg,
		log:      log,
		metrics:  newMetrics(reg),
		conns:    newRegistry(cfg.MaxConns, cfg.MaxConnsPerIP),
		recent:   newRecentChildren(10*time.Minute, 10000),
		stopPing: make(chan struct{}),
	}
	s.guard = s.newGuard(reg)
	s.drainers = newDrainers(maxIdleDrainers, s.stopPing)
	go s.pingLoop()
	s.upgrader = websocket.FastHTTPUpgrader{
		// Frames are a few hundred bytes; a larger frame takes more reads.
		// Each idle phone holds its read buffer, so keep it small.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		// Phones are native apps, not browsers: there is no Origin to check.
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
	}
	return s
}

// maxIdleDrainers bounds the reply writers kept waiting for work: enough
// for a household's phones and a load test's bursts, a few hundred KiB of
// stacks at most when all are parked.
const maxIdleDrainers = 64

// Paths served by Handle.
const (
	PathDirect = "/ws/ingest/"
	PathAuth   = "/ws/ingest-auth/"
	PathHTTP   = "/api/ingest/"
)

// Handle serves ctx if its path belongs to the device protocol and reports
// whether it did; a caller mounts its own routes behind it.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.Path())
	switch {
	case path == PathAuth || path == strings.TrimSuffix(PathAuth, "/"):
		s.serveWS(ctx, endpointAuth, "")
	case strings.HasPrefix(path, PathDirect):
		s.serveWS(ctx, endpointDirect, strings.TrimSuffix(strings.TrimPrefix(path, PathDirect), "/"))
	case path == PathHTTP || path == strings.TrimSuffix(PathHTTP, "/"):
		s.serveHTTP(ctx)
	default:
		return false
	}
	return true
}

// Handler returns a fasthttp handler serving only the device protocol.
func (s *Server) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if !s.Handle(ctx) {
			ctx.Error("not found: phones use /ws/ingest/<child_hash>/, /ws/ingest-auth/ or POST /api/ingest/", fasthttp.StatusNotFound)
		}
	}
}

// Connections returns the number of open WebSockets.
func (s *Server) Connections() int { return s.conns.count() }

// Shutdown stops taking new connections, lets every open WebSocket answer
// the frames it has read, closes it with 1001 and waits for all of them, or
// for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopPing) })
	return s.conns.shutdown(ctx)
}

// ConfigureServer sets what the device protocol needs of the fasthttp server
// that serves it: sessions own their hijacked connections (so fasthttp frees
// each request's buffers at the upgrade), and unreadable requests are
// answered and counted like other refusals.
func (s *Server) ConfigureServer(srv *fasthttp.Server) {
	srv.KeepHijackedConns = true
	if srv.ErrorHandler == nil {
		srv.ErrorHandler = s.RequestError
	}
}

// pingLoop pings every WebSocket each PingInterval from one goroutine, so an
// idle phone costs no timer and no goroutine of its own. It also fails the
// replies that have been stuck in a write for WriteTimeout (checked every
// quarter of it), so a reply costs no timer either (see session.write).
func (s *Server) pingLoop() {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	w := time.NewTicker(s.cfg.WriteTimeout / 4)
	defer w.Stop()
	for {
		select {
		case <-s.stopPing:
			return
		case <-t.C:
			for _, ss := range s.conns.sessions() {
				go ss.ping() // a slow phone must not hold up the others' pings
			}
		case <-w.C:
			now := monoNow()
			for _, ss := range s.conns.sessions() {
				ss.failStalledWrite(now)
			}
		}
	}
}

// known asks the roster about a child with a bounded wait.
func (s *Server) known(hash string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	return s.roster.Known(ctx, hash)
}

// storeAsync hands msgs to the sink and calls done once with one outcome
// per message; a sink that does not answer within StoreTimeout is taken
// as unavailable (done is then called by the timer, and the late answer
// is dropped: the phone resends, and resends are harmless).
func (s *Server) storeAsync(msgs []hearth.Message, done func(errs []error)) {
	var once sync.Once
	finish := func(errs []error) { once.Do(func() { done(errs) }) }
	t := time.AfterFunc(s.cfg.StoreTimeout, func() {
		finish(repeatErr(fmt.Errorf("%w: the store did not answer in %s", hearth.ErrUnavailable, s.cfg.StoreTimeout), len(msgs)))
	})
	answer := func(errs []error) {
		t.Stop()
		finish(errs)
	}
	if ms, ok := s.sink.(MessageSink); ok {
		ms.StoreEach(msgs, answer)
		return
	}
	s.sink.StoreAsync(msgs, func(err error) { answer(repeatErr(err, len(msgs))) })
}

// store is storeAsync for a caller that waits.
func (s *Server) store(msgs []hearth.Message) []error {
	res := make(chan []error, 1)
	s.storeAsync(msgs, func(errs []error) { res <- errs })
	return <-res
}

func repeatErr(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// storeRefusal maps a store error to its reply.
func (s *Server) storeRefusal(err error) refusal {
	switch {
	case errors.Is(err, hearth.ErrFull):
		return refusal{hearth.ErrFull.Error(), ReasonFull, s.cfg.RetryAfter}
	case hearth.IsInvalid(err):
		return refusal{err.Error(), invalidReason(err), 0}
	case errors.Is(err, hearth.ErrUnknownChild):
		return refusal{"unknown child", ReasonUnknownChild, 0}
	}
	return refusal{hearth.ErrUnavailable.Error(), ReasonUnavailable, s.cfg.RetryAfter}
}

// invalidReason maps a validation error to its metric label.
func invalidReason(err error) string {
	switch hearth.InvalidCode(err) {
	case hearth.CodeTooOld:
		return ReasonTooOld
	case hearth.CodeFuture:
		return ReasonFuture
	case hearth.CodeUnknownType:
		return ReasonUnknownType
	case hearth.CodeChildMismatch:
		return ReasonChildMismatch
	}
	return ReasonInvalid
}

// shortHash shortens a child hash for logs: hashes are never printed whole.
func shortHash(h string) string {
	if len(h) <= 6 {
		return h[:len(h)/2] + "…"
	}
	return h[:6] + "…"
}

// ShutdownWith stops hs (the fasthttp server serving s) and s together:
// fasthttp neither waits for nor closes the WebSockets it handed over.
func (s *Server) ShutdownWith(ctx context.Context, hs *fasthttp.Server) error {
	wsDone := make(chan error, 1)
	go func() { wsDone <- s.Shutdown(ctx) }()
	return errors.Join(hs.ShutdownWithContext(ctx), <-wsDone)
}
