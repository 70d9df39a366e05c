// Package daemon is hearthd: it wires the device protocol to the durable
// outbox and serves status, metrics and health on an admin listener.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/forwarder"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/internal/admin"
	"github.com/guardianai/hearth/internal/svc"
	"github.com/guardianai/hearth/outbox"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"
)

// OutboxFile is the outbox's file name inside the data directory.
const OutboxFile = "outbox.db"

// benchNoStore is set only in a build with -tags nostore (see nostore.go).
var benchNoStore = false

// discardSink acks without storing: the benchmark ceiling.
type discardSink struct{}

func (discardSink) StoreAsync(_ []hearth.Message, done func(error)) { done(nil) }

// Daemon is one running hearthd.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	outbox  *outbox.Outbox
	ingest  *ingest.Server
	public  *fasthttp.Server
	admin   *fasthttp.Server
	pubLn   net.Listener
	adminLn net.Listener
	started time.Time
	ready   atomic.Bool
	serving *svc.Serving // the listeners, and why one stopped (readiness)
	stopBg  context.CancelFunc
	bgDone  chan struct{}
	fwd     *forwarder.Forwarder // nil when forwarding is off
	page    *householdPage       // nil without page_listen
	roster  *forwarder.Roster    // central's roster; nil when forwarding is off
	stopFwd context.CancelFunc
	fwdDone chan struct{}
	deadAPI *deadLetterAPI
}

// New opens the outbox and prepares the servers; Start listens.
func New(cfg Config, log *slog.Logger) (*Daemon, error) {
	if err := cfg.LoadSecrets(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.checkStorage(log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	ob, err := outbox.Open(filepath.Join(cfg.DataDir, OutboxFile), outbox.Options{
		MaxBytes:    int64(cfg.OutboxMaxBytes),
		MaxMessages: cfg.OutboxMaxMessages,
		Logger:      log,
		SettleDelay: cfg.OutboxSettleDelay,
		// Dead letters: capped, and kept no longer than data is.
		DeadMaxMessages: cfg.OutboxDeadMaxMessages,
		DeadRetention:   time.Duration(cfg.RetentionDays) * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	d := &Daemon{cfg: cfg, log: log, reg: prometheus.NewRegistry(), outbox: ob}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(), admin.BuildInfo("hearthd", Version), ob.Collector())
	d.serving = svc.NewServing(log, d.listenerGauge())
	d.newDeadLetterAPI()
	var sink ingest.Sink = ob
	if benchNoStore {
		log.Warn("BENCHMARK BUILD: messages are acked WITHOUT being stored (built with -tags nostore)")
		sink = discardSink{}
	}
	roster, err := d.newForwarder()
	if err != nil {
		ob.Close()
		return nil, err
	}
	if sink, err = d.newPage(sink); err != nil {
		ob.Close()
		return nil, err
	}
	d.ingest = ingest.New(sink, roster, d.ingestConfig(), d.reg, log)
	d.public = d.publicServer()
	d.admin = d.adminServer()
	return d, nil
}

func (d *Daemon) ingestConfig() ingest.Config {
	c := d.cfg.Limits.Config()
	c.Window = d.window
	c.Clock = d.ReceivedAt
	c.ConnectionLabel = "hearth at home"
	c.Refused = d.refusedChild
	return c
}

func (d *Daemon) publicServer() *fasthttp.Server {
	srv := &fasthttp.Server{
		Name:    "hearthd",
		Handler: d.ingest.Handler(),
		// ingest enforces MaxFrameBytes itself with a clean 413; fasthttp's
		// own limit, which answers before reading the body (the phone sees a
		// broken pipe and resends forever), only stops hostile sizes.
		MaxRequestBodySize: ingest.BodyReadLimit(int(d.cfg.MaxFrameBytes)),
		// Also the largest request head: phones send a few hundred bytes of
		// headers, and a smaller pooled buffer suits a router.
		ReadBufferSize: 2048,
		WriteTimeout:   d.cfg.WriteTimeout,
		IdleTimeout:    d.cfg.IdleTimeout,
		// Each connection still reading a request holds a worker; the
		// guarded listener keeps those under max_pending_conns.
		Concurrency:           d.cfg.MaxConns + 256,
		ReduceMemoryUsage:     true,
		NoDefaultServerHeader: true,
		Logger:                admin.FasthttpLogger(d.log),
	}
	d.ingest.ConfigureServer(srv)
	// Read timeouts for slow clients (headers within header_timeout, the
	// body within read_timeout) and fasthttp's per-address backstop; the
	// pending caps and the body rate floor need the listener wrapped by
	// d.ingest.GuardListener.
	d.ingest.GuardServer(srv)
	return srv
}

// Start listens on both addresses and serves in the background.
func (d *Daemon) Start() error {
	var err error
	if d.pubLn, err = net.Listen("tcp", d.cfg.Listen); err != nil {
		return fmt.Errorf("listen for phones: %w", err)
	}
	if d.adminLn, err = net.Listen("tcp", d.cfg.AdminListen); err != nil {
		d.pubLn.Close()
		return fmt.Errorf("listen for admin: %w", err)
	}
	d.pubLn = d.ingest.GuardListener(d.pubLn) // slow clients: admitted at accept, held to min_body_rate
	d.started = time.Now()
	d.serving.Go("public", d.pubLn, d.public.Serve)
	d.serving.Go("admin", d.adminLn, d.admin.Serve)
	ctx, cancel := context.WithCancel(context.Background())
	d.stopBg, d.bgDone = cancel, make(chan struct{})
	go d.maintain(ctx)
	d.startForwarder()
	if err := d.startPage(); err != nil {
		return err // the caller shuts down what started
	}
	d.ready.Store(true)
	d.cfg.warnUnguarded(d.log)
	d.log.Info("hearthd ready", "version", Version, "listen", d.pubLn.Addr().String(), "admin", d.adminLn.Addr().String(),
		"outbox", d.outbox.Path(), "children", d.rosterSize(), "page", d.PageAddr())
	return nil
}

// rosterSize says in the start log which children are accepted.
func (d *Daemon) rosterSize() any {
	switch {
	case d.fwd != nil && len(d.cfg.Children) > 0:
		return fmt.Sprintf("%d listed, if on central's roster too", len(d.cfg.Children))
	case d.fwd != nil:
		return "central's roster"
	case len(d.cfg.Children) > 0:
		return len(d.cfg.Children)
	}
	return "any"
}

// Addr is the phones' listener address (after Start).
func (d *Daemon) Addr() string { return d.pubLn.Addr().String() }

// AdminAddr is the admin listener address (after Start).
func (d *Daemon) AdminAddr() string { return d.adminLn.Addr().String() }

// Outbox exposes the outbox (for the forwarder and tests).
func (d *Daemon) Outbox() *outbox.Outbox { return d.outbox }

// maintain compacts the outbox when it has grown and shrunk again, and
// purges the dead letters past the retention window.
func (d *Daemon) maintain(ctx context.Context) {
	defer close(d.bgDone)
	d.expireDeadLetters()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.expireDeadLetters()
			// The outbox logs a compaction itself.
			if _, err := d.outbox.CompactIfWorthwhile(); err != nil {
				d.log.Error("outbox compaction failed; will retry in an hour", "err", err)
			}
		}
	}
}

// Shutdown stops in reverse order of start: phones first (in-flight frames
// answered, WebSockets closed with 1001), then the forwarder (a request in
// flight is abandoned; its batch is sent again later), then the outbox,
// then admin.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.ready.Store(false)
	d.serving.Stop()
	steps := svc.NewSteps(d.log)
	steps.Run("phone listener", func() error {
		err := d.ingest.ShutdownWith(ctx, d.public)
		svc.CloseListener(d.pubLn)
		return svc.IgnoreClosed(err) // a listener that stopped before was reported then
	})
	steps.Run("household page", func() error { return d.stopPage(ctx) })
	steps.Run("forwarder", func() error { return d.stopForwarder(ctx) })
	if d.stopBg != nil {
		d.stopBg()
		<-d.bgDone
	}
	steps.Run("outbox", d.outbox.Close)
	steps.Run("admin listener", func() error {
		err := d.admin.ShutdownWithContext(ctx)
		svc.CloseListener(d.adminLn)
		return svc.IgnoreClosed(err)
	})
	return steps.Err()
}
