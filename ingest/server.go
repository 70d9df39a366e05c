package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Config sets the limits of the device protocol. Zero values take the defaults
// of DefaultConfig.
type Config struct {
	MaxFrameBytes   int           // largest text frame or HTTP body accepted
	MaxConns        int           // open WebSockets; more get 503 before the upgrade
	MaxConnsPerIP   int           // open WebSockets per client address
	RatePerSecond   float64       // data frames per connection per second
	RateBurst       int           // frames a connection may send at once above the rate
	PingInterval    time.Duration // the server pings connections this often
	IdleTimeout     time.Duration // a connection silent this long (no frame, no pong) is closed
	WriteTimeout    time.Duration // a reply not written in this time closes the connection
	AuthTimeout     time.Duration // the auth flow must authenticate within this
	Pipeline        int           // frames in flight per connection before reading pauses
	RetryAfter      time.Duration // advised in Retry-After when the sink is full or down
	StoreTimeout    time.Duration // a Store call taking longer answers "unavailable"
	Window          func() hearth.Window
	ConnectionLabel string // name used in connection_established messages
}

// DefaultConfig returns the limits a home router can afford.
func DefaultConfig() Config {
	return Config{
		MaxFrameBytes: 64 << 10,
		MaxConns:      1000,
		MaxConnsPerIP: 32,
		RatePerSecond: 200,
		RateBurst:     400,
		PingInterval:  30 * time.Second,
		IdleTimeout:   90 * time.Second,
		WriteTimeout:  10 * time.Second,
		AuthTimeout:   30 * time.Second,
		Pipeline:      16,
		RetryAfter:    30 * time.Second,
		StoreTimeout:  30 * time.Second,
		Window:        func() hearth.Window { return hearth.Window{} },
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
// idle phone costs no timer and no goroutine of its own.
func (s *Server) pingLoop() {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopPing:
			return
		case <-t.C:
			for _, ss := range s.conns.sessions() {
				go ss.ping() // a slow phone must not hold up the others' pings
			}
		}
	}
}

// MaxChildHashLen bounds a child hash; the seed's hashes are far shorter.
const MaxChildHashLen = 128

// checkChildHash validates the form of a hash (not whether it is known).
func checkChildHash(h string) error {
	if h == "" {
		return errors.New("child_hash is missing")
	}
	if len(h) > MaxChildHashLen {
		return errors.New("child_hash is longer than " + strconv.Itoa(MaxChildHashLen) + " characters")
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return errors.New("child_hash contains a character that is not allowed")
		}
	}
	return nil
}

// known asks the roster about a child with a bounded wait.
func (s *Server) known(hash string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	return s.roster.Known(ctx, hash)
}

// store hands msgs to the sink with a bounded wait.
func (s *Server) store(msgs []hearth.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	return s.sink.Store(ctx, msgs)
}

// storeRefusal maps a Store error to a client message and a metric reason.
func storeRefusal(err error) (msg, reason string) {
	switch {
	case errors.Is(err, hearth.ErrFull):
		return hearth.ErrFull.Error(), ReasonFull
	case hearth.IsInvalid(err):
		return err.Error(), invalidReason(err)
	case errors.Is(err, hearth.ErrUnknownChild):
		return "unknown child", ReasonUnknownChild
	}
	return hearth.ErrUnavailable.Error(), ReasonUnavailable
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
