// Package central is hearth-central, the aggregation server: it takes edge
// batches and phones' direct data into the SQL store, and serves the read,
// metrics and health APIs.
package central

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/internal/admin"
	"github.com/guardianai/hearth/internal/svc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"
)

// Paths of the public listener besides the device protocol's.
const (
	PathChildren = "/v1/children/"
)

// Server is one running hearth-central.
type Server struct {
	cfg         Config
	log         *slog.Logger
	store       store.Store
	sink        *Sink
	reg         *prometheus.Registry
	metrics     *metrics
	fleetCache  fleetCache // fleetview.go
	fleetErrors atomic.Int64
	guard       *guard // limits.go: body budget, per-home fairness, bad-token throttle, edge reports
	ingest      *ingest.Server
	public      *fasthttp.Server
	admin       *fasthttp.Server
	pubLn       net.Listener
	adminLn     net.Listener
	ready       atomic.Bool
	stopBg      context.CancelFunc
	bgDone      chan struct{}
	warn        svc.LogLimiter

	serving   *svc.Serving          // the listeners, and why one stopped (readiness)
	certs     *certReloader         // nil without TLS
	ops       *opsMetrics           // listeners, write probe, TLS, read refusals
	writeErr  atomic.Pointer[error] // the last write probe's failure; nil: writable
	probeDone chan struct{}         // closed when the write probe has stopped
}

// Open opens the database named by cfg (applying pending migrations) and
// returns a Server on it; see New.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := store.OpenWith(ctx, cfg.DSN(), StoreOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", RedactDSN(cfg.DSN()), err)
	}
	s, err := New(cfg, st, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// StoreOptions are the store settings that cfg implies.
func StoreOptions(cfg Config) store.Options {
	return store.Options{Retention: cfg.Retention(), MaxFuture: hearth.DefaultMaxFuture, MaxConns: cfg.MaxDBConns, Schema: cfg.Schema,
		ConnWait: cfg.DBWait, WriterWait: cfg.DBWait}
}

// New returns a Server on st and prepares its listeners; Start listens.
// It reads admin_token_file and the TLS certificate, so a missing or
// unsafe file stops the start. On success the Server owns st: Shutdown
// closes it.
func New(cfg Config, st store.Store, log *slog.Logger) (*Server, error) {
	if err := cfg.LoadSecrets(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, store: st, reg: prometheus.NewRegistry()}
	if cfg.TLSCertFile != "" {
		var err error
		if s.certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, err
		}
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	s.reg.MustRegister(admin.BuildInfo("hearth-central", s.version()))
	s.metrics = newMetrics(s.reg)
	s.ops = newOpsMetrics(s.reg, s.certs != nil)
	registerPool(s.reg, st)
	s.serving = svc.NewServing(log, func(name string, up bool) { s.ops.listenerUp.WithLabelValues(name).Set(b2f(up)) })
	s.sink = NewSink(st, sinkWorkers(cfg), cfg.StoreTimeout)
	s.ingest = ingest.New(s.sink, Roster{st}, s.ingestConfig(), s.reg, log)
	s.public = s.publicServer()
	s.admin = s.adminServer()
	s.reg.MustRegister(fleetCollector{s})
	return s, nil
}

// sinkWorkers is how many phone transactions run at once: SQLite has one
// writer; PostgreSQL takes several.
func sinkWorkers(cfg Config) int {
	if strings.HasPrefix(cfg.DSN(), "sqlite:") {
		return 1
	}
	return max(2, cfg.MaxDBConns/2)
}

func (s *Server) ingestConfig() ingest.Config {
	c := s.cfg.Limits.Config()
	c.RetryAfter = s.cfg.RetryAfter
	c.StoreTimeout = s.cfg.StoreTimeout
	c.Window = func() hearth.Window { return s.window(time.Now()) }
	c.Clock = func() (time.Time, bool) { return time.Now().UTC(), true } // central's own clock
	c.ConnectionLabel = "hearth-central"
	return c
}

// window is central's time check at now: its clock is trusted.
func (s *Server) window(now time.Time) hearth.Window {
	return hearth.Window{Now: now, MaxAge: s.cfg.Retention(), MaxFuture: hearth.DefaultMaxFuture}
}

// publicServer builds the listener for edges, phones and readers. Bodies
// are streamed (StreamRequestBody): the handler runs once the headers and
// the first byte of a body have arrived, and reads the rest only once it
// has decided to, within the body budget (limits.go): a batch after its
// token and its home's limits let it in, a phone's HTTP body up to the
// device protocol's read limit. The headers and that first byte must
// arrive within read_timeout. Multipart forms are not pre-parsed: fasthttp
// would read them whole, before any handler, whatever their size.
func (s *Server) publicServer() *fasthttp.Server {
	s.guard = newGuard(s.cfg.FloodLimits, s.reg)
	srv := &fasthttp.Server{
		Name:                         "hearth-central",
		Handler:                      s.route,
		StreamRequestBody:            true,
		MaxRequestBodySize:           preAuthBodyBytes,
		DisablePreParseMultipartForm: true,
		ErrorHandler:                 s.requestError,
		ReadTimeout:                  s.cfg.ReadTimeout,
		WriteTimeout:                 s.cfg.WriteTimeout,
		IdleTimeout:                  s.cfg.IdleTimeout,
		MaxConnsPerIP:                s.cfg.MaxConnsPerIP,
		Concurrency:                  s.cfg.MaxConns + 1024,
		NoDefaultServerHeader:        true,
		Logger:                       admin.FasthttpLogger(s.log),
	}
	s.ingest.ConfigureServer(srv)
	s.ingest.GuardServer(srv) // headers within header_timeout, then read_timeout for the body
	return srv
}

// preAuthBodyBytes is the most of a body fasthttp reads with the headers,
// before any handler has looked at them: with StreamRequestBody it reads
// min(this, Content-Length) bytes and leaves the rest on the connection
// for the handler's stream. 1 (0 means fasthttp's default, 4 MiB) lets a
// handler refuse a batch with a bad token as soon as its body starts.
const preAuthBodyBytes = 1

// route serves the public listener: the device protocol first, then the
// edge and read APIs. A phone's HTTP body is read here, within the body
// budget, for the device protocol, which expects it in memory.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if isPhonePost(ctx, path) {
		lease := s.guard.budget.lease()
		defer lease.release()
		if !s.readPhoneBody(ctx, lease) {
			return
		}
	}
	if s.ingest.Handle(ctx) {
		return
	}
	switch {
	case path == hearth.PathEdgeBatches:
		s.serveBatch(ctx)
	case path == hearth.PathEdgeRoster:
		s.serveRoster(ctx)
	case strings.HasPrefix(path, PathChildren):
		s.serveGuardedRead(ctx, strings.TrimPrefix(path, PathChildren))
	default:
		writeError(ctx, fasthttp.StatusNotFound, "not found: edges use "+hearth.PathEdgeBatches+" and "+hearth.PathEdgeRoster+
			", phones /ws/ingest/<child_hash>/ or /api/ingest/, readers "+PathChildren+"<child_hash>/{screen_time,locations,site_access}")
	}
}

// requestError answers a request fasthttp could not read (malformed
// headers, a client too slow to send them) like the device protocol does.
// Bodies are streamed and bounded by the handlers themselves, so an
// oversized batch never reaches here.
func (s *Server) requestError(ctx *fasthttp.RequestCtx, err error) {
	s.ingest.RequestError(ctx, err)
}

// Start listens on both addresses and serves in the background. The
// public listener speaks TLS when a certificate is configured. The first
// write probe runs before Start returns, so a database that cannot be
// written is logged, and /readyz fails, from the first moment.
func (s *Server) Start() error {
	var err error
	if s.pubLn, err = net.Listen("tcp", s.cfg.Listen); err != nil {
		return fmt.Errorf("listen for edges and phones: %w", err)
	}
	if s.adminLn, err = net.Listen("tcp", s.cfg.AdminListen); err != nil {
		s.pubLn.Close()
		return fmt.Errorf("listen for admin: %w", err)
	}
	guard := s.ingest.GuardListener // slow clients: admitted at accept, held to min_body_rate
	if s.certs != nil {
		guard = s.ingest.GuardListenerBelowTLS // TLS wraps it: refusals close without a plain-text 503
	}
	s.pubLn = guard(s.pubLn)
	if s.certs != nil {
		// Hijacked connections (WebSockets) are the *tls.Conn, so they stay
		// encrypted; the handshake runs on the connection's first read,
		// under the server's read timeout, never in the accept loop.
		s.pubLn = tls.NewListener(s.pubLn, s.certs.config())
		s.logCert("serving TLS on the public listener")
	}
	s.probeWrite()
	s.serving.Go("public", s.pubLn, s.public.Serve)
	s.serving.Go("admin", s.adminLn, s.admin.Serve)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopBg, s.bgDone = cancel, make(chan struct{})
	s.probeDone = make(chan struct{})
	go s.retention(ctx)
	go s.probeWrites(ctx)
	s.ready.Store(true)
	s.log.Info("hearth-central ready", "version", s.version(), "listen", s.pubLn.Addr().String(), "admin", s.adminLn.Addr().String(),
		"tls", s.certs != nil, "db", RedactDSN(s.cfg.DSN()), "retention_days", s.cfg.RetentionDays,
		"admin_token", s.cfg.AdminToken != "", "pprof", s.cfg.Pprof)
	return nil
}

// Addr is the public listener's address (after Start).
func (s *Server) Addr() string { return s.pubLn.Addr().String() }

// AdminAddr is the admin listener's address (after Start).
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// Shutdown stops in reverse order of start: the public listener (in-flight
// batches finish, WebSockets close with 1001), the retention job, the
// store, then the admin listener.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.serving.Stop()
	steps := svc.NewSteps(s.log)
	steps.Run("public listener", func() error {
		err := s.ingest.ShutdownWith(ctx, s.public)
		svc.CloseListener(s.pubLn)
		return svc.IgnoreClosed(err) // a listener that stopped before was reported then
	})
	if s.stopBg != nil {
		steps.Run("retention job and write probe", func() error { s.stopBg(); <-s.bgDone; <-s.probeDone; return nil })
	}
	steps.Run("phone sink", func() error { s.sink.Close(); return nil })
	steps.Run("store", s.store.Close)
	steps.Run("admin listener", func() error {
		err := s.admin.ShutdownWithContext(ctx)
		svc.CloseListener(s.adminLn)
		return svc.IgnoreClosed(err)
	})
	return steps.Err()
}

// dbContext bounds one request's database work. It is not derived from the
// request: fasthttp's RequestCtx is done only at server shutdown, and a
// batch in flight then must still finish.
func (s *Server) dbContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
}

// unavailable reports whether err means "retry later": the store is down
// or too slow.
func unavailable(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}
