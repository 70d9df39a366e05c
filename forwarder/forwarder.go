// Package forwarder sends the edge's outbox to central in gzip batches and
// deletes a message only once central has answered for it (docs/edge-api.md).
//
// What happens on each answer is decided per status code (see send.go):
// nothing acked is ever dropped silently; a message central refuses for good
// goes to the outbox's dead letters with the reason.
package forwarder

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guardianai/hearth/internal/svc"
	"github.com/guardianai/hearth/outbox"
	"github.com/prometheus/client_golang/prometheus"
)

// Queue is the durable outbox the forwarder drains; *outbox.Outbox is one.
type Queue interface {
	// ReadBatch appends the oldest pending messages, in their batch JSON,
	// to b.JSON (at most n, within maxBytes) and their seqs to b.Seqs.
	// Only messages with a seq above after (and up to b.Until, when set)
	// are read.
	ReadBatch(b *outbox.Batch, after uint64, n, maxBytes int) error
	// LastSeq is the highest seq given so far: what a replay drains up to.
	LastSeq() uint64
	// DeleteLater removes records central has stored; reads skip them
	// at once, and the delete is committed with the next append.
	DeleteLater(seqs ...uint64)
	// DeadLetterLater moves a record central refused for good aside with
	// reason (its start gives the code: outbox.DeadCode), as DeleteLater
	// deletes.
	DeadLetterLater(seq uint64, reason string)
	// Appended delivers a token after messages were appended.
	Appended() <-chan struct{}
	// Stats is cheap and tells how much is pending.
	Stats() outbox.Stats
}

// State is what the forwarder is doing, as shown in the daemon's /status.
type State string

// States of a Forwarder.
const (
	StateOff          State = "off" // no central configured (the daemon's state; never a Forwarder's)
	StateIdle         State = "idle"
	StateSending      State = "sending"
	StateBackoff      State = "backoff"
	StateUnauthorized State = "unauthorized"
	// StateRefused: central refused a whole batch (400 or another 4xx):
	// nothing is dropped, the batch is tried again every MaxBackoff.
	StateRefused State = "refused"
)

// Config configures a Forwarder. Zero durations and sizes take the defaults.
type Config struct {
	URL           string        // central's base URL, e.g. http://central:8080
	Token         string        // the home's bearer token; never logged
	EdgeID        string        // this edge's name in batches
	Version       string        // this edge's build, sent to central in a header; default "dev"
	BatchMessages int           // most messages per batch; default 500
	BatchBytes    int64         // most JSON bytes per batch before gzip; default 1 MiB
	MaxBackoff    time.Duration // longest wait between retries; default 5m
	Timeout       time.Duration // per request; default 30s
	// ReplayJitter bounds the random delay before the first send of a
	// backlog found at start, so a fleet that restarts together after an
	// outage does not replay at once; 0 means none.
	ReplayJitter time.Duration
	BaseBackoff  time.Duration // first retry's ceiling; default 1s
	// Poll is how often an empty queue is looked at besides the queue's
	// wake-up on append (a safety net, not the path data takes); default 5s.
	Poll        time.Duration
	RosterEvery time.Duration // roster sync interval; default 5m
	// InFlight is how many batches may be on their way at once; default 2.
	InFlight int
	// CAFile is a PEM file of the CAs trusted for central's certificate,
	// instead of the system's ("" = the system's).
	CAFile string
	// MaxRate bounds the messages sent per second while the oldest
	// pending message is older than ReplayAge (a fleet replaying after an
	// outage); 0 means no bound.
	MaxRate float64
	// ReplayAge is how old the oldest pending message must be for MaxRate
	// to apply, and for new messages to be sent ahead of the backlog;
	// default 5m.
	ReplayAge time.Duration
	// Insecure allows a plain http:// URL to a host other than loopback,
	// where the token and the children's data would cross the network
	// unencrypted. It never turns off certificate checks.
	Insecure bool
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.BatchMessages <= 0 {
		c.BatchMessages = 500
	}
	if c.InFlight <= 0 {
		c.InFlight = 2
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	def(&c.MaxBackoff, 5*time.Minute)
	def(&c.Timeout, 30*time.Second)
	def(&c.BaseBackoff, time.Second)
	def(&c.Poll, 5*time.Second)
	def(&c.RosterEvery, 5*time.Minute)
	def(&c.ReplayAge, 5*time.Minute)
	c.BaseBackoff = min(c.BaseBackoff, c.MaxBackoff)
	return c
}

// Validate reports a URL the forwarder cannot or must not use.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("central_url: %q is not an http(s):// URL", c.URL)
	}
	if u.Scheme == "http" && !c.Insecure && !loopback(u.Hostname()) {
		return fmt.Errorf("central_url: %q is plain http:// to another host: the home's token and the children's data would cross the network unencrypted; "+
			"use https:// (central's tls_cert_file, or a TLS reverse proxy), or set central_insecure: true to accept that", c.URL)
	}
	if c.CAFile != "" && u.Scheme != "https" {
		return fmt.Errorf("central_ca_file: %s is set but central_url %q is not https://", c.CAFile, c.URL)
	}
	if c.Token == "" {
		return errors.New("central_token: must be set when central_url is (the home's token from `hearth-central home add`, best in central_token_file)")
	}
	return nil
}

// loopback reports whether host is this machine: a loopback address or
// "localhost". Names are not resolved: one that points here is still
// treated as another host.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Forwarder drains a Queue to central. Run it once; Status is safe to call
// from any goroutine.
type Forwarder struct {
	cfg     Config
	queue   Queue
	roster  *Roster
	clock   *Clock
	log     *slog.Logger
	client  *http.Client
	metrics *metrics
	warn    svc.LogLimiter

	mu           sync.Mutex
	state        State
	lastError    string
	lastErrorAt  time.Time     // kept after the error is cleared
	nextRetryAt  time.Time     // zero unless waiting after a failure
	rateCap      float64       // messages/s in effect now; 0: none
	offsetLogged bool          // the clock offset has been logged
	loggedOffset time.Duration // the offset last logged
	forwarded    atomic.Int64
	// centralRetention is central's retention window as its roster
	// answer last said (0: not known yet).
	centralRetention atomic.Int64

	// Owned by the send loop.
	failures int // consecutive rounds with a failed batch
	// roundFailed: a batch of the current round (the batches sent since
	// the last pause) failed already; see fail.
	roundFailed bool
	msgCap      int // batch size learnt from 413s and bisection
	okStreak    int // batches accepted since msgCap last shrank
	bisect      bisect
	nextSend    time.Time // the pace of a replay: when the next batch may go
	rate        float64   // the rate cap in effect (0: none)
}

// New returns a Forwarder draining q to central; roster (may be nil) is
// kept in step with central's roster of the home, and refreshed through
// the forwarder when it misses a child. Its metrics are registered on reg.
func New(cfg Config, q Queue, roster *Roster, reg prometheus.Registerer, log *slog.Logger) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	tr, err := newTransport(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{
		cfg: cfg, queue: q, roster: roster, clock: &Clock{}, log: log.With("component", "forwarder"),
		client:  &http.Client{Timeout: cfg.Timeout, Transport: tr},
		metrics: newMetrics(reg), state: StateIdle, msgCap: cfg.BatchMessages,
	}
	if roster != nil {
		f.metrics.rosterChildren.Set(float64(roster.Size()))
		roster.SetRefresh(f.syncRoster)
	}
	return f, nil
}

// Clock is central's time as measured from its answers.
func (f *Forwarder) Clock() *Clock { return f.clock }

// newTransport is the client side of every request to central. It
// verifies central's certificate against caFile's CAs, or the system's
// when caFile is "".
func newTransport(caFile string) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 2
	t.DisableCompression = true // replies are small; keep them plain
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return t, nil
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("central_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("central_ca_file: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Status is the forwarder's part of the daemon's /status.
type Status struct {
	State          State
	ForwardedTotal int64 // messages central has stored since start
	// LastError is why the last batch did not go through; cleared once
	// one does. LastErrorAt is when it happened, and is kept.
	LastError   string
	LastErrorAt time.Time
	NextRetryAt time.Time // when the next try is, while waiting after a failure
	RateCap     float64   // messages/s the replay of a backlog is held to now; 0: none
}

// Status reports the current state.
func (f *Forwarder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{State: f.state, ForwardedTotal: f.forwarded.Load(), LastError: f.lastError,
		LastErrorAt: f.lastErrorAt, NextRetryAt: f.nextRetryAt, RateCap: f.rateCap}
}

func (f *Forwarder) setState(s State) {
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
	f.metrics.setUnauthorized(s == StateUnauthorized)
	f.metrics.setRefused(s == StateRefused)
}

func (f *Forwarder) setError(err error) {
	f.mu.Lock()
	f.lastError, f.lastErrorAt = err.Error(), time.Now()
	f.mu.Unlock()
}

// clearError forgets the last error once a batch went through.
func (f *Forwarder) clearError() {
	f.mu.Lock()
	f.lastError = ""
	f.mu.Unlock()
}

// setNextRetry says when the next try is (zero: not waiting).
func (f *Forwarder) setNextRetry(t time.Time) {
	f.mu.Lock()
	f.nextRetryAt = t
	f.mu.Unlock()
	if t.IsZero() {
		f.metrics.nextRetry.Set(0)
	} else {
		f.metrics.nextRetry.Set(float64(t.UnixNano()) / 1e9)
	}
}

// Run sends batches and syncs the roster until ctx ends. An in-flight
// request is abandoned then, which is safe: delivery is at-least-once and
// central's upserts make a resend harmless. The caller must keep the Queue
// open until Run has returned.
func (f *Forwarder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { f.syncRosterLoop(ctx) })
	f.sendLoop(ctx)
	wg.Wait()
}

// sendLoop is the forwarder's main loop: batches oldest first, up to
// InFlight at once (the next is read and sent while central stores the
// previous one). Each batch's answer is acted on for exactly its own
// messages. After a batch that did not go through, the loop lets the others
// finish, pauses as settle says, and reads again from the oldest pending
// message, so nothing is skipped; what central stored meanwhile is not sent
// again (its delete is queued, and reads skip it).
func (f *Forwarder) sendLoop(ctx context.Context) {
	f.replayDelay(ctx)
	free := make(chan *flight, f.cfg.InFlight)
	for range f.cfg.InFlight {
		free <- &flight{}
	}
	done := make(chan *flight, f.cfg.InFlight) // never blocks a sender
	var cur cursor                             // what is in flight or sent
	var pause wait                             // to take once nothing is in flight
	inFlight := 0
	for ctx.Err() == nil {
		if inFlight < f.cfg.InFlight && pause.d <= 0 && !cur.reread {
			fl := <-free
			f.pace(ctx) // before the read, so that it takes the freshest data
			n, err := f.read(fl, &cur)
			if err != nil {
				free <- fl
				pause, cur.reread = f.fail(outcome{label: resultError, err: fmt.Errorf("read outbox: %w", err)}), true
				continue
			}
			f.bisect.readSome(n)
			if n > 0 {
				f.setState(StateSending)
				f.paced(n)
				inFlight++
				go func() { fl.send(ctx, f); done <- fl }()
				continue
			}
			free <- fl
			if f.bisect.aloneInQueue() {
				cur.reread = true // no neighbour to try: the suspect's turn again
				continue
			}
		}
		if inFlight == 0 {
			if pause.d > 0 {
				f.pause(ctx, pause)
				pause = wait{}
			}
			f.roundFailed = false // all are back: the next batches start a round
			if cur.reread {
				cur.fromOldest(f.bisect.takeSkip())
				continue
			}
			f.setState(StateIdle)
			f.waitForData(ctx, nil)
			continue
		}
		fl := f.waitForData(ctx, done)
		if fl == nil {
			continue // new data: fill the free slot
		}
		inFlight--
		o := f.settleFlight(fl)
		free <- fl
		if o.label != resultOK && o.label != resultRejected || f.bisect.takeReread() {
			cur.reread = true // read again from the oldest once all are back
		}
		if w := f.settle(o); w.d > pause.d {
			pause = w
		}
	}
}

// flight is one batch on its way, with its buffers (reused).
type flight struct {
	batch  outbox.Batch
	zipped bytes.Buffer
	reply  *reply
	err    error
}

// readRange fills fl with the oldest messages after seq after, up to seq
// until (0: no bound).
func (f *Forwarder) readRange(fl *flight, after, until uint64) (int, error) {
	fl.batch.JSON = appendBatchHead(fl.batch.JSON[:0], f.cfg.EdgeID, time.Now())
	fl.batch.Until = until
	err := f.queue.ReadBatch(&fl.batch, after, f.replayCap(f.msgCap), int(f.cfg.BatchBytes))
	return len(fl.batch.Seqs), err
}

// replayDelay waits a random part of ReplayJitter when a backlog is found
// at start.
func (f *Forwarder) replayDelay(ctx context.Context) {
	depth := f.queue.Stats().Depth
	if f.cfg.ReplayJitter <= 0 || depth == 0 {
		return
	}
	d := rand.N(f.cfg.ReplayJitter)
	f.log.Info("backlog found at start; waiting a random delay before replaying it", "messages", depth, "in", d.Round(time.Millisecond))
	sleep(ctx, d)
}

// waitForData waits for the queue's wake-up after an append, or Poll, or
// a batch coming back on done (nil: none in flight), which it returns.
func (f *Forwarder) waitForData(ctx context.Context, done <-chan *flight) *flight {
	t := time.NewTimer(f.cfg.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-f.queue.Appended():
	case <-t.C:
	case fl := <-done:
		return fl
	}
	return nil
}

// pause waits d (0: not at all) in state backoff, unauthorized or refused.
func (f *Forwarder) pause(ctx context.Context, w wait) {
	if w.d <= 0 {
		return
	}
	f.setState(w.state)
	f.metrics.backoff.Set(w.d.Seconds())
	f.setNextRetry(time.Now().Add(w.d))
	sleep(ctx, w.d)
	f.setNextRetry(time.Time{})
	f.metrics.backoff.Set(0)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// CentralRetention is central's retention window as its last roster
// answer said; 0 until one did.
func (f *Forwarder) CentralRetention() time.Duration {
	return time.Duration(f.centralRetention.Load())
}
