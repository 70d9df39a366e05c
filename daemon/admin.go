package daemon

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/guardianai/hearth/internal/admin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/valyala/fasthttp"
)

// Status is the JSON of GET /status.
type Status struct {
	Version                string  `json:"version"`
	Connections            int     `json:"connections"`
	OutboxDepth            int64   `json:"outbox_depth"`
	OutboxBytes            int64   `json:"outbox_bytes"`
	OutboxOldestAgeSeconds float64 `json:"outbox_oldest_age_seconds"`
	OutboxFileBytes        int64   `json:"outbox_file_bytes"`
	DeadLetters            int64   `json:"dead_letters"`
	ClockTrusted           bool    `json:"clock_trusted"`
	UptimeSeconds          float64 `json:"uptime_seconds"`
	Ready                  bool    `json:"ready"`
	// DeadLettersByReason counts the dead letters per reason code
	// (hearthd deadletters list --reason CODE).
	DeadLettersByReason map[string]int64 `json:"dead_letters_by_reason"`
	ForwardState        string           `json:"forward_state"` // off, idle, sending, backoff, unauthorized or refused
	ForwardedTotal      int64            `json:"forwarded_total"`
	// LastForwardError is cleared once a batch goes through; its time
	// stays in LastForwardErrorAt.
	LastForwardError   string     `json:"last_forward_error"`
	LastForwardErrorAt *time.Time `json:"last_forward_error_at,omitempty"`
	NextRetryAt        *time.Time `json:"next_retry_at,omitempty"` // while waiting after a failure
	// ForwardRateCap is the messages/s a backlog replay is held to now
	// (forward_max_rate while the backlog is older than forward_replay_age); 0: none.
	ForwardRateCap float64 `json:"forward_rate_cap"`
	// ClockOffsetSeconds is central's clock minus the local one as last
	// measured (0 while unknown); present only with forwarding on.
	ClockOffsetSeconds *float64 `json:"clock_offset_seconds,omitempty"`
}

// Status reports the daemon's state.
func (d *Daemon) Status() Status {
	st := d.outbox.Stats()
	_, trusted := d.now()
	s := Status{
		Version:         Version,
		Connections:     d.ingest.Connections(),
		OutboxDepth:     st.Depth,
		OutboxBytes:     st.Bytes,
		OutboxFileBytes: st.FileBytes,
		DeadLetters:     st.DeadLetters,
		ClockTrusted:    trusted,
		UptimeSeconds:   time.Since(d.started).Seconds(),
		Ready:           d.readiness() == nil,
	}
	d.forwardStatus(&s)
	s.DeadLettersByReason = d.deadCounts(st)
	s.OutboxOldestAgeSeconds = d.oldestAge(st).Seconds()
	return s
}

func (d *Daemon) adminServer() *fasthttp.Server {
	return admin.NewServer(admin.Options{
		Name:     "hearthd-admin",
		Registry: d.reg,
		Ready:    d.readiness,
		Routes: map[string]fasthttp.RequestHandler{"/status": d.serveStatus,
			PathDeadLetters: d.serveDeadLetters, PathDeadLettersRetry: d.serveDeadLetters, PathDeadLettersPurge: d.serveDeadLetters},
		Log:   d.log,
		Pprof: d.cfg.Pprof,
	})
}

func (d *Daemon) serveStatus(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	b, _ := json.Marshal(d.Status())
	ctx.SetBody(append(b, '\n'))
}

// readiness is nil while the daemon serves: started and not stopping,
// and both listeners serving (one closed or broken under the daemon is
// reported with the reason).
func (d *Daemon) readiness() error {
	if !d.ready.Load() {
		return errors.New("starting or shutting down")
	}
	return d.serving.Err()
}

// listenerGauge registers hearth_listener_up and returns the hook that
// keeps it current.
func (d *Daemon) listenerGauge() func(name string, up bool) {
	g := promauto.With(d.reg).NewGaugeVec(prometheus.GaugeOpts{
		Name: "hearth_listener_up",
		Help: "1 while the listener (public, admin) serves; 0 once it stopped outside a shutdown (/readyz fails).",
	}, []string{"listener"})
	return func(name string, up bool) {
		v := 0.0
		if up {
			v = 1
		}
		g.WithLabelValues(name).Set(v)
	}
}
