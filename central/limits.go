package central

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/internal/svc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// FloodLimits keep central's memory bounded by its configuration rather
// than by its clients, and keep one home (or one address guessing tokens)
// from starving the others. They are part of Config, inline.
type FloodLimits struct {
	// MaxBodyMemory bounds the memory of the request bodies (edge
	// batches, decompressed, and phones' HTTP bodies) held at once across
	// all requests, each byte held counting decodeFactor bytes for what is
	// decoded from it; beyond it a request is answered 503 + Retry-After.
	MaxBodyMemory config.ByteSize `yaml:"max_body_memory"`
	// HomeBatchRate and HomeBatchBurst are a token bucket of batches per
	// home; beyond it a batch is answered 429 + Retry-After.
	HomeBatchRate  float64 `yaml:"home_batch_rate"`
	HomeBatchBurst int     `yaml:"home_batch_burst"`
	// HomeBatchesInFlight bounds one home's batches being served at once.
	HomeBatchesInFlight int `yaml:"home_batches_in_flight"`
	// BadTokenLimit unknown tokens from one address (an IPv6 /64) within
	// BadTokenWindow make it get 429 for the rest of the window, without
	// a database lookup.
	BadTokenLimit  int           `yaml:"bad_token_limit"`
	BadTokenWindow time.Duration `yaml:"bad_token_window"`
	// BatchesInFlight bounds the edge batches this replica serves at once,
	// all homes together; beyond it a batch is answered 503 + Retry-After
	// before its body is read (shed.go).
	BatchesInFlight int `yaml:"batches_in_flight"`
	// DBWait bounds a request's wait for a PostgreSQL connection; a
	// request that waits longer is answered 503 + Retry-After, never
	// queued without bound. (SQLite has one writer: batches wait for it
	// within store_timeout, as many as BatchesInFlight.)
	DBWait time.Duration `yaml:"db_wait"`
}

// DefaultFloodLimits keep central within about 200 MB through a flood:
// 64 MiB of body memory is 16 MiB of decompressed batches at once, four
// of the largest central takes, or sixteen of the largest an edge sends
// (1 MiB of JSON), or hundreds of ordinary ones.
func DefaultFloodLimits() FloodLimits {
	return FloodLimits{
		MaxBodyMemory:       64 << 20,
		HomeBatchRate:       10,
		HomeBatchBurst:      30,
		HomeBatchesInFlight: 2,
		BadTokenLimit:       10,
		BadTokenWindow:      time.Minute,
		BatchesInFlight:     defaultBatchesInFlight,
		DBWait:              defaultDBWait,
	}
}

// Bind ties the limits to their flags and variables.
func (l *FloodLimits) Bind(b *config.Binder) {
	b.Bytes(&l.MaxBodyMemory, "max-body-memory", "memory for request bodies at once, all requests together, 4 bytes per body byte held (beyond: 503)")
	b.Float(&l.HomeBatchRate, "home-batch-rate", "edge batches per second per home (beyond: 429)")
	b.Int(&l.HomeBatchBurst, "home-batch-burst", "edge batches a home may send at once above its rate")
	b.Int(&l.HomeBatchesInFlight, "home-batches-in-flight", "edge batches of one home served at once (beyond: 429)")
	b.Int(&l.BadTokenLimit, "bad-token-limit", "unknown tokens from one address (IPv6: /64) per window before it gets 429")
	b.Duration(&l.BadTokenWindow, "bad-token-window", "window of bad-token-limit")
	b.Int(&l.BatchesInFlight, "batches-in-flight", "edge batches this replica serves at once, all homes together (beyond: 503)")
	b.Duration(&l.DBWait, "db-wait", "longest wait of a request for a database connection, or on SQLite of a batch for the writer (beyond: 503)")
}

// Validate returns one error per limit that cannot work; largest is the
// biggest body one request may hold, which the budget must fit with what
// is decoded from it.
func (l *FloodLimits) Validate(largest int64) []error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(int64(l.MaxBodyMemory) >= decodeFactor*largest, "max_body_memory (%d) must hold at least one of the largest bodies (%d bytes, counted %d times)", l.MaxBodyMemory, largest, decodeFactor)
	check(l.HomeBatchRate > 0, "home_batch_rate: must be positive")
	check(l.HomeBatchBurst >= 1, "home_batch_burst: must be at least 1")
	check(l.HomeBatchesInFlight >= 1, "home_batches_in_flight: must be at least 1")
	check(l.BadTokenLimit >= 1, "bad_token_limit: must be at least 1")
	check(l.BadTokenWindow > 0, "bad_token_window: must be positive")
	check(l.BatchesInFlight >= 1, "batches_in_flight: must be at least 1")
	check(l.DBWait > 0, "db_wait: must be positive")
	return errs
}

// Labels of hearth_central_limited_total: where a limit refused a request
// and which one.
const (
	endpointBatches   = "batches"
	endpointRoster    = "roster"
	endpointRead      = "read"
	endpointPhoneHTTP = "phone_http"

	limitMemory       = "memory"         // the body budget is spent
	limitHomeRate     = "home_rate"      // the home's token bucket is empty
	limitHomeInFlight = "home_in_flight" // the home has its batches in flight
	limitBadTokens    = "bad_tokens"     // the address presented too many unknown tokens
	limitInFlight     = "in_flight"      // the replica has batches_in_flight batches being served
	limitDBWait       = "db_wait"        // no database connection came free within db_wait
)

// allLimits are the limit labels, for series that exist before their first refusal.
var allLimits = []string{limitMemory, limitHomeRate, limitHomeInFlight, limitBadTokens, limitInFlight, limitDBWait}

// busyRetryAfter is advised when the body budget is spent: bodies are
// held for milliseconds, so the budget frees up quickly.
const busyRetryAfter = 2 * time.Second

// guard holds the state of the flood limits of one Server.
type guard struct {
	budget   *bodyBudget
	flight   *inFlight
	homes    *homeLimiter
	throttle *tokenThrottle
	edges    *edgeReports
	authLog  svc.LogLimiter // refused tokens: an attacker must not fill the disk
	limitLog svc.LogLimiter // limit refusals
}

func newGuard(l FloodLimits, reg prometheus.Registerer) *guard {
	g := &guard{
		budget:   &bodyBudget{max: int64(l.MaxBodyMemory)},
		flight:   &inFlight{max: int64(l.BatchesInFlight)},
		homes:    newHomeLimiter(l.HomeBatchRate, l.HomeBatchBurst, l.HomeBatchesInFlight),
		throttle: newTokenThrottle(l.BadTokenLimit, l.BadTokenWindow, maxThrottled),
		edges:    newEdgeReports(),
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hearth_central_body_memory_bytes",
		Help: "Memory charged now to the request bodies held (edge batches decompressed, phones' HTTP bodies), 4 bytes per body byte for what is decoded from them; at most max_body_memory.",
	}, func() float64 { return float64(g.budget.used.Load()) }), g.flight.gauge())
	return g
}

// refusal is a limit's answer: its status, metric label, reason text and
// the wait it advises.
type refusal struct {
	status     int
	limit      string
	reason     string
	retryAfter time.Duration
}

// bodyBudget is a semaphore of bytes shared by every request that reads a
// body into memory. Requests take from it as they allocate, never wait
// for it: a request that finds it spent is refused at once.
//
// A body costs more than its bytes: decoding a batch makes messages,
// checked payloads and database arguments of it, and the batch waits with
// them for the database (one writer on SQLite). Measured on the binary,
// batches of 10 000 small messages (the worst case per byte) took about
// four times their JSON in live heap, so each byte held is charged
// decodeFactor bytes, and the budget bounds what bodies really cost.
const decodeFactor = 4

type bodyBudget struct {
	max  int64
	used atomic.Int64
}

// errBudgetSpent refuses a body that would take the budget past its max.
var errBudgetSpent = errors.New("request bodies in memory are at their limit")

// lease starts one request's share of the budget; release returns it.
func (b *bodyBudget) lease() *bodyLease { return &bodyLease{b: b} }

// bodyLease is what one request holds of a bodyBudget.
type bodyLease struct {
	b    *bodyBudget
	held int64
}

// takeBody charges n bytes of a body held, with what is decoded from it.
func (l *bodyLease) takeBody(n int64) error { return l.take(decodeFactor * n) }

// take adds n bytes to the lease, or refuses with errBudgetSpent.
func (l *bodyLease) take(n int64) error {
	if l.b.used.Add(n) > l.b.max {
		l.b.used.Add(-n)
		return errBudgetSpent
	}
	l.held += n
	return nil
}

// release returns everything the lease holds.
func (l *bodyLease) release() {
	l.b.used.Add(-l.held)
	l.held = 0
}

// errBodyTooLarge: the body has more bytes than the reader's limit.
var errBodyTooLarge = errors.New("body too large")

// minBodyAlloc is the first buffer of a body of unknown size.
const minBodyAlloc = 4 << 10

// readLimited reads r to its end into one buffer of at most limit bytes;
// a longer body is errBodyTooLarge, found by reading one byte past the
// limit, never by holding it. Before each allocation it asks take (when
// not nil) for the bytes it adds, so all requests together stay within
// the body budget. hint sizes the first allocation (the body's size when
// known): a body of exactly hint bytes is read with one allocation.
func readLimited(r io.Reader, limit, hint int64, take func(int64) error) ([]byte, error) {
	var buf []byte
	next := int64(minBodyAlloc)
	if hint > 0 {
		next = hint
	}
	next = min(limit, next)
	for {
		if len(buf) == cap(buf) {
			b, more, err := readByte(r)
			if !more {
				return buf, err
			}
			if int64(len(buf)) >= limit {
				return nil, errBodyTooLarge
			}
			if buf, err = growBody(buf, next, take); err != nil {
				return nil, err
			}
			buf = append(buf, b)
			next = min(limit, 2*int64(cap(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// readByte reads one byte: more is false at the end of r (err nil) or on
// an error.
func readByte(r io.Reader) (byte, bool, error) {
	var p [1]byte
	for {
		n, err := r.Read(p[:])
		if n == 1 {
			return p[0], true, nil
		}
		if err == io.EOF {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
	}
}

// growBody moves buf to a buffer of size bytes, taking the difference
// from the budget first.
func growBody(buf []byte, size int64, take func(int64) error) ([]byte, error) {
	size = max(size, int64(len(buf))+1)
	if take != nil {
		if err := take(size - int64(cap(buf))); err != nil {
			return nil, err
		}
	}
	grown := make([]byte, len(buf), size)
	copy(grown, buf)
	return grown, nil
}

// homeLimiter is the per-home fairness of the batch API: a token bucket
// of batches and a bound on batches in flight, so one home (or a
// compromised router) cannot take the database from the others. It holds
// one small entry per home that sent a batch since start: homes are
// created by the operator, so their number is bounded.
type homeLimiter struct {
	rate     float64
	burst    float64
	inFlight int

	mu    sync.Mutex
	homes map[string]*homeState
}

type homeState struct {
	tokens   float64
	last     time.Time
	inFlight int
}

func newHomeLimiter(rate float64, burst, inFlight int) *homeLimiter {
	return &homeLimiter{rate: rate, burst: float64(burst), inFlight: inFlight, homes: map[string]*homeState{}}
}

// enter admits one batch of home at now, or says why not. An admitted
// batch calls leave when it is answered. A batch refused for being over
// the in-flight bound keeps its token: it did not cost anything.
func (h *homeLimiter) enter(home string, now time.Time) *refusal {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.homes[home]
	if st == nil {
		st = &homeState{tokens: h.burst, last: now}
		h.homes[home] = st
	}
	// Concurrent requests may read the clock out of order: a step back
	// refills nothing rather than taking tokens away.
	if elapsed := now.Sub(st.last); elapsed > 0 {
		st.tokens = min(h.burst, st.tokens+elapsed.Seconds()*h.rate)
		st.last = now
	}
	if st.inFlight >= h.inFlight {
		return &refusal{429, limitHomeInFlight, fmt.Sprintf("this home already has %d batches in flight; send one at a time", st.inFlight), time.Second}
	}
	if st.tokens < 1 {
		wait := time.Duration(math.Ceil((1 - st.tokens) / h.rate * float64(time.Second)))
		return &refusal{429, limitHomeRate, fmt.Sprintf("this home sends more than %g batches per second; slow down", h.rate), wait}
	}
	st.tokens--
	st.inFlight++
	return nil
}

// leave ends a batch that enter admitted.
func (h *homeLimiter) leave(home string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.homes[home]; st != nil && st.inFlight > 0 {
		st.inFlight--
	}
}

// tokenThrottle counts unknown tokens per client address (IPv6 per /64,
// which one subscriber usually has whole) in fixed windows; an address
// past the limit is refused until its window ends, before any database
// lookup. It tracks at most maxAddrs addresses: when full, expired
// entries go first, then arbitrary ones (an attacker with that many
// addresses is not slowed by a throttle anyway, and memory stays bounded).
type tokenThrottle struct {
	limit    int
	window   time.Duration
	maxAddrs int

	mu    sync.Mutex
	addrs map[string]*failures
}

// maxThrottled bounds the addresses tracked (about 100 bytes each).
const maxThrottled = 100_000

type failures struct {
	count int
	since time.Time
}

func newTokenThrottle(limit int, window time.Duration, maxAddrs int) *tokenThrottle {
	return &tokenThrottle{limit: limit, window: window, maxAddrs: maxAddrs, addrs: map[string]*failures{}}
}

// blocked reports whether addr is throttled at now and for how long.
func (t *tokenThrottle) blocked(addr string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.addrs[addr]
	if f == nil || f.count < t.limit {
		return 0, false
	}
	left := f.since.Add(t.window).Sub(now)
	return left, left > 0
}

// fail counts an unknown token from addr at now and reports whether the
// address has just reached the limit.
func (t *tokenThrottle) fail(addr string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.addrs[addr]
	if f == nil || now.Sub(f.since) >= t.window {
		if f == nil {
			t.makeRoom(now)
		}
		f = &failures{since: now}
		t.addrs[addr] = f
	}
	f.count++
	return f.count == t.limit
}

// makeRoom drops entries until one more fits.
func (t *tokenThrottle) makeRoom(now time.Time) {
	if len(t.addrs) < t.maxAddrs {
		return
	}
	for a, f := range t.addrs {
		if now.Sub(f.since) >= t.window {
			delete(t.addrs, a)
		}
	}
	for a := range t.addrs {
		if len(t.addrs) < t.maxAddrs {
			return
		}
		delete(t.addrs, a)
	}
}

// addrKey is the throttle's key for a client address: an IPv4 address
// whole, an IPv6 address by its /64.
func addrKey(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	if len(ip) == net.IPv6len {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// refuseLimit answers a request a limit refused and returns its batch
// result label. The connection is closed: the body, if any, is not read.
func (s *Server) refuseLimit(ctx *fasthttp.RequestCtx, endpoint string, r refusal) string {
	ctx.SetConnectionClose()
	ctx.Response.Header.Set("Retry-After", ingest.RetryAfter(r.retryAfter))
	writeError(ctx, r.status, r.reason)
	s.countLimited(ctx, endpoint, r)
	return limitResults[r.limit]
}

// limitResults maps a limit to its hearth_central_batches_total result.
var limitResults = map[string]string{
	limitMemory:       BatchBusy,
	limitHomeRate:     BatchRateLimited,
	limitHomeInFlight: BatchInFlight,
	limitBadTokens:    BatchThrottled,
	limitInFlight:     BatchShed,
	limitDBWait:       BatchDBWait,
}

// countLimited counts a limit's refusal and logs it at most every 10 s.
func (s *Server) countLimited(ctx *fasthttp.RequestCtx, endpoint string, r refusal) {
	s.metrics.limited.WithLabelValues(endpoint, r.limit).Inc()
	if ok, held := s.guard.limitLog.Allow(10 * time.Second); ok {
		s.log.Warn("request refused by a limit", "endpoint", endpoint, "limit", r.limit, "status", r.status,
			"remote", ctx.RemoteIP().String(), "retry_after", r.retryAfter, "similar_held_back", held)
	}
}

// isPhonePost reports whether ctx is a phone's HTTP fallback post, whose
// body route reads before the device protocol sees it.
func isPhonePost(ctx *fasthttp.RequestCtx, path string) bool {
	return ctx.IsPost() && (path == ingest.PathHTTP || path == strings.TrimSuffix(ingest.PathHTTP, "/"))
}

// readPhoneBody reads a phone's HTTP body from the request stream into
// memory, within the body budget and the device protocol's read limit, so
// that the device protocol finds it in PostBody as it expects. When it
// returns false it has answered: 413 (too large, as the device protocol
// answers it), 408 or 400 (not received), 503 + Retry-After (the budget
// is spent). The caller releases the lease after the request is served.
func (s *Server) readPhoneBody(ctx *fasthttp.RequestCtx, lease *bodyLease) bool {
	limit := ingest.BodyReadLimit(int(s.cfg.MaxFrameBytes))
	sent := ctx.Request.Header.ContentLength()
	stream := ctx.RequestBodyStream()
	var err error
	switch {
	case sent > limit:
		err = errBodyTooLarge
	case stream == nil:
		return true // no body
	default:
		var body []byte
		if body, err = readLimited(requestBody(ctx), int64(limit), int64(max(sent, 0)), lease.takeBody); err == nil {
			ctx.Request.SetBodyRaw(body)
			return true
		}
	}
	switch {
	case errors.Is(err, errBudgetSpent):
		ctx.Error("central is busy (request bodies in memory are at their limit); retry later", fasthttp.StatusServiceUnavailable)
		ctx.Response.Header.Set("Retry-After", ingest.RetryAfter(busyRetryAfter)) // after Error, which resets the headers
		s.countLimited(ctx, endpointPhoneHTTP, refusal{fasthttp.StatusServiceUnavailable, limitMemory, "", busyRetryAfter})
	case errors.Is(err, errBodyTooLarge):
		s.ingest.RequestError(ctx, fasthttp.ErrBodyTooLarge)
	default:
		s.ingest.RequestError(ctx, err)
	}
	ctx.SetConnectionClose() // the rest of the body is not read
	return false
}

// requestBody is the request's body as a stream: the server streams
// bodies (StreamRequestBody); a request without a body has no stream. A
// body that ends before its Content-Length is io.ErrUnexpectedEOF, not
// the plain EOF fasthttp's request stream reports, so that a body cut
// short is not taken for a whole one.
func requestBody(ctx *fasthttp.RequestCtx) io.Reader {
	r := ctx.RequestBodyStream()
	if r == nil {
		return bytes.NewReader(ctx.Request.Body())
	}
	if n := ctx.Request.Header.ContentLength(); n >= 0 {
		return &wholeReader{r: r, left: int64(n)}
	}
	return r
}

// wholeReader turns an EOF before left bytes into io.ErrUnexpectedEOF.
type wholeReader struct {
	r    io.Reader
	left int64
}

func (w *wholeReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.left -= int64(n)
	if err == io.EOF && w.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
