package ingest

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/netguard"
	"github.com/valyala/fasthttp"
)

// Close codes of the auth flow, as the seed system sent them.
const (
	CloseAuthMissingHash = 4001
	CloseUnknownChild    = 4004
)

// preAuthFrameLimit is the largest frame buffered before the auth flow has
// authenticated: an auth frame is under a hundred bytes, and a pending
// connection must cost the server little. Larger frames are read past and
// answered not_authenticated (the data was not looked at).
const preAuthFrameLimit = 4 << 10

// hardFrameLimit multiplies MaxFrameBytes: frames between the two limits are
// refused with an error frame and skipped; beyond it the connection closes
// with 1009, so a hostile client cannot stream without end.
const hardFrameLimit = 16

// Endpoints of the WebSocket protocol, as metric labels.
const (
	endpointDirect = "direct"
	endpointAuth   = "auth"
)

// serveWS upgrades a phone's connection on endpoint; hash is the child of
// a direct connection.
func (s *Server) serveWS(ctx *fasthttp.RequestCtx, endpoint, hash string) {
	if endpoint == endpointDirect && !s.admitChild(ctx, hash) {
		return
	}
	ip := netguard.KeyOf(ctx.RemoteAddr()).String()
	if err := s.conns.admit(ip); err != nil {
		s.refuseConn(ctx, err)
		return
	}
	mode := protocolMode(&ctx.Request.Header)
	gc := s.guardConn(ctx)
	err := s.upgrader.Upgrade(ctx, func(c *websocket.Conn) {
		// A direct connection named a known child: it is established. The
		// auth flow stays pending (counted against its address's cap, and
		// evictable) until it authenticates.
		if endpoint == endpointDirect {
			gc.Established()
		} else {
			gc.Upgraded()
		}
		// Returning at once lets fasthttp release the request's buffers
		// (the server keeps hijacked conns: see ConfigureServer); the
		// session owns the conn and closes it.
		go func() {
			sess := newSession(s, c, endpoint, hash, mode, gc)
			defer s.conns.release(ip, sess)
			sess.run()
		}()
	})
	if err != nil {
		s.conns.release(ip, nil)
		s.metrics.refuse(ReasonMalformed, "ws")
	}
}

// admitChild checks a direct connection's child before the upgrade; the
// seed refused an unknown child at the handshake with 403.
func (s *Server) admitChild(ctx *fasthttp.RequestCtx, hash string) bool {
	if err := hearth.CheckChildHash(hash); err != nil {
		s.metrics.refuse(ReasonBadChildHash, "ws")
		ctx.Error(err.Error(), fasthttp.StatusForbidden)
		return false
	}
	ok, err := s.known(hash)
	switch {
	case err != nil:
		s.warnRetry("roster unavailable; phone told to retry later", hash, err)
		s.metrics.refuse(ReasonUnavailable, "ws")
		s.unavailable(ctx, "cannot check the child now; retry later")
		return false
	case !ok:
		s.metrics.refuse(ReasonUnknownChild, "ws")
		s.refusedChild(hash, ReasonUnknownChild)
		ctx.Error("unknown child", fasthttp.StatusForbidden)
		return false
	}
	return true
}

func (s *Server) refuseConn(ctx *fasthttp.RequestCtx, err error) {
	reason := ReasonConnLimit
	switch {
	case errors.Is(err, errIPLimit):
		reason = ReasonIPLimit
	case errors.Is(err, errShuttingDown):
		reason = ReasonShuttingDown
	}
	s.metrics.refuse(reason, "ws")
	s.unavailable(ctx, err.Error())
}

// unavailable answers 503 with Retry-After: the phone keeps its data.
func (s *Server) unavailable(ctx *fasthttp.RequestCtx, msg string) {
	ctx.Error(msg, fasthttp.StatusServiceUnavailable) // resets the headers: set ours after
	ctx.Response.Header.Set("Retry-After", RetryAfter(s.cfg.RetryAfter))
}

// session is one phone's WebSocket: a reader goroutine (the upgrade handler)
// decodes frames and queues one reply per frame; a writer goroutine sends
// the replies in order, each data ack once its message is durable.
type session struct {
	srv      *Server
	conn     *websocket.Conn
	endpoint string
	mode     hearth.Mode // ModeStrict when the upgrade asked for Hearth-Protocol: 2
	child    string      // "" until the auth flow succeeds
	replies  chan *reply
	stopping atomic.Bool
	bucket   tokenBucket
	guard    *netguard.Conn // nil when the listener is not guarded

	// The writer runs only while replies are queued: an idle phone costs
	// one goroutine (the reader), not two.
	deadlineSet time.Time // when extendDeadline last moved the read deadline; reader only

	// writeSince: when the write in progress began (monoNow), 0 when
	// none, writeStalled once the ping loop has failed it.
	writeSince atomic.Int64

	writing atomic.Bool
	writers sync.WaitGroup
	broken  bool   // a write failed; owned by the goroutine draining
	last    *reply // the last reply drained; same owner
}

// reply is the answer to one frame. When done is not nil the body is
// written only after done is closed (the message is stored or refused).
type reply struct {
	body      []byte
	done      chan struct{}
	data      *pendingData
	closeCode int
	closeText string
}

// pendingData is a data message being stored.
type pendingData struct {
	checked hearth.Checked
	id      []byte
	start   time.Time
	err     error
}

func newSession(s *Server, c *websocket.Conn, endpoint, child string, mode hearth.Mode, gc *netguard.Conn) *session {
	return &session{
		srv:      s,
		guard:    gc,
		mode:     mode,
		conn:     c,
		endpoint: endpoint,
		child:    child,
		replies:  make(chan *reply, s.cfg.Pipeline),
		bucket:   newTokenBucket(s.cfg.RatePerSecond, s.cfg.RateBurst),
	}
}

// stop asks the session to finish: stop reading, answer what was read,
// close with 1001. Safe from any goroutine.
func (ss *session) stop() {
	ss.stopping.Store(true)
	_ = ss.conn.SetReadDeadline(time.Now())
}

func (ss *session) run() {
	m := ss.srv.metrics
	if !ss.srv.conns.attach(ss) {
		ss.stop()
	}
	m.connections.Inc()
	m.accepted.WithLabelValues(ss.endpoint).Inc()
	defer m.connections.Dec()
	ss.conn.SetReadLimit(int64(ss.srv.cfg.MaxFrameBytes) * hardFrameLimit)
	ss.conn.SetPongHandler(func(string) error { return ss.refreshDeadline() })
	if ss.child != "" {
		ss.connected()
		_ = ss.extendDeadline()
		ss.enqueue(&reply{body: encodeEstablished(ss.child, ss.srv.cfg.ConnectionLabel)})
	} else {
		_ = ss.conn.SetReadDeadline(time.Now().Add(ss.srv.cfg.AuthTimeout))
		ss.enqueue(&reply{body: encodeAuthRequired()})
	}
	ss.readLoop()
	ss.writers.Wait() // the reader was the only producer: the queue drains
	ss.finish()
	if ss.child != "" {
		ss.srv.recent.disconnected(ss.child, time.Now())
	}
}

// connected counts a session that has its child.
func (ss *session) connected() {
	if ss.srv.recent.reconnected(ss.child, time.Now()) {
		ss.srv.metrics.reconnections.Inc()
	}
	ss.srv.log.Debug("phone connected", "child", shortHash(ss.child), "endpoint", ss.endpoint, "remote", ss.conn.RemoteAddr().String())
}

// extendDeadline pushes the idle deadline out, unless the session is stopping.
func (ss *session) extendDeadline() error {
	if ss.stopping.Load() {
		return nil
	}
	now := time.Now()
	if err := ss.conn.SetReadDeadline(now.Add(ss.srv.cfg.IdleTimeout)); err != nil {
		return err
	}
	ss.deadlineSet = now
	if ss.stopping.Load() { // stop raced with us: make its deadline win
		return ss.conn.SetReadDeadline(time.Now())
	}
	return nil
}

// refreshDeadline is extendDeadline for every frame: moving a deadline takes
// a runtime lock, so it is moved only once an eighth of the idle timeout has
// passed since the last move (a silent phone is closed after 7/8 to 8/8 of it).
func (ss *session) refreshDeadline() error {
	if time.Since(ss.deadlineSet) < ss.srv.cfg.IdleTimeout/8 {
		return nil
	}
	return ss.extendDeadline()
}

// framePool lends frame buffers: a phone holds one only while a frame is
// being read and handled, never while idle.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (ss *session) readLoop() {
	for {
		mt, r, err := ss.conn.NextReader()
		if err != nil {
			ss.readEnded(err)
			return
		}
		rep, err := ss.readAndHandle(mt, r)
		if err != nil {
			ss.readEnded(err)
			return
		}
		ss.enqueue(rep)
		if rep.closeCode != 0 || ss.stopping.Load() {
			return
		}
	}
}

// readAndHandle reads one frame into a pooled buffer and answers it; the
// reply keeps nothing of the buffer.
func (ss *session) readAndHandle(mt int, r io.Reader) (*reply, error) {
	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 4096 { // let a large frame's buffer go
			framePool.Put(bp)
		}
	}()
	buf, tooLarge, err := readFrame(r, (*bp)[:0], ss.frameLimit())
	*bp = buf
	if err != nil {
		return nil, err
	}
	if ss.child != "" || ss.endpoint == endpointDirect {
		if err := ss.refreshDeadline(); err != nil {
			return nil, err
		}
	}
	return ss.handle(mt, buf, tooLarge), nil
}

// frameLimit is the largest frame the session buffers now.
func (ss *session) frameLimit() int {
	if ss.child == "" {
		return preAuthFrameLimit
	}
	return ss.srv.cfg.MaxFrameBytes
}

// readEnded decides how a connection whose read failed is closed.
func (ss *session) readEnded(err error) {
	var ne net.Error
	if errors.Is(err, netguard.ErrEvicted) {
		// Room was made for another address's connection (counted by the
		// guard): the phone reconnects later.
		ss.enqueue(&reply{
			body:      encodeError(nil, refusal{msg: "server busy: " + err.Error(), reason: ReasonEvicted, retryAfter: ss.srv.cfg.RetryAfter}),
			closeCode: websocket.CloseTryAgainLater, closeText: "retry later",
		})
		return
	}
	if ss.child == "" && !ss.stopping.Load() && errors.As(err, &ne) && ne.Timeout() {
		ss.enqueue(&reply{
			body:      encodeError(nil, refusal{msg: "authentication timed out: send {\"type\":\"auth\",\"child_hash\":\"…\"} after connecting", reason: ReasonNotAuth}),
			closeCode: CloseAuthMissingHash, closeText: "authentication timeout",
		})
	}
}

// readFrame reads one frame into buf, keeping at most limit bytes; a longer
// frame is read to its end and reported as too large.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, bool, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				_, err := io.Copy(io.Discard, r)
				return buf[:0], true, err
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, len(buf) > limit, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
}

// enqueue queues a reply and makes sure a writer is draining the queue.
// Only the reader calls it; a full queue (Pipeline frames in flight) makes
// the reader wait, which is the connection's backpressure.
func (ss *session) enqueue(rep *reply) {
	ss.replies <- rep
	if ss.writing.CompareAndSwap(false, true) {
		ss.writers.Add(1)
		ss.srv.drainers.start(ss)
	}
}

// drain writes queued replies in order and exits when the queue is empty.
func (ss *session) drain() {
	defer ss.writers.Done()
	for {
		select {
		case rep := <-ss.replies:
			if !ss.broken && ss.write(rep) != nil {
				ss.broken = true
				ss.abort()
			}
			ss.last = rep
		default:
			ss.writing.Store(false)
			// A reply queued after the empty check but before the Store
			// found the writer still running: take it on.
			if len(ss.replies) == 0 || !ss.writing.CompareAndSwap(false, true) {
				return
			}
		}
	}
}

// abort makes the reader give up now: the connection is broken.
func (ss *session) abort() {
	_ = ss.conn.SetReadDeadline(time.Now())
}

// ping sends a control ping; the phone's pong extends its idle deadline.
func (ss *session) ping() {
	if ss.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(ss.srv.cfg.WriteTimeout)) != nil {
		ss.abort()
	}
}

// write sends one reply, first waiting for its message to be stored.
//
// The reply has no write deadline of its own: fasthttp/websocket applies
// the connection's write deadline to the socket before every frame, and
// moving a socket deadline re-arms a runtime timer under a lock that all
// connections share (5 % of hearthd's CPU at 50 phones, in lock contention
// and stack growth). Instead the write is stamped, and the ping loop fails
// a write stuck for WriteTimeout (after 1 to 1.25 times it).
func (ss *session) write(rep *reply) error {
	if rep.done != nil {
		<-rep.done
		rep.body = ss.dataReply(rep.data)
	}
	ss.writeSince.Store(monoNow())
	err := ss.conn.WriteMessage(websocket.TextMessage, rep.body)
	if ss.writeSince.Swap(0) == writeStalled && err == nil {
		err = errWriteStalled // it went through at last: too late, close anyway
	}
	return err
}

// writeStalled marks a write that failStalledWrite has failed.
const writeStalled = -1

var errWriteStalled = errors.New("reply not written within the write timeout")

// failStalledWrite makes a write that began WriteTimeout before now fail:
// a phone that does not read its replies is closed, as a write deadline
// would close it.
func (ss *session) failStalledWrite(now int64) {
	since := ss.writeSince.Load()
	if since <= 0 || now-since < int64(ss.srv.cfg.WriteTimeout) || !ss.writeSince.CompareAndSwap(since, writeStalled) {
		return
	}
	_ = ss.conn.NetConn().SetWriteDeadline(time.Unix(1, 0)) // the blocked write returns a timeout
}

// monoEpoch anchors monoNow, which reads the monotonic clock.
var monoEpoch = time.Now()

// monoNow is the monotonic time in nanoseconds since monoEpoch; never 0
// or negative after the first nanosecond, so 0 can mean "none".
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// finish closes the connection once every reply is out.
func (ss *session) finish() {
	defer ss.conn.Close()
	if ss.broken {
		return
	}
	code, text := websocket.CloseNormalClosure, ""
	switch {
	case ss.last != nil && ss.last.closeCode != 0:
		code, text = ss.last.closeCode, ss.last.closeText
	case ss.stopping.Load():
		code, text = websocket.CloseGoingAway, "server shutting down"
	}
	_ = ss.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
}

// dataReply turns a stored (or refused) message into its ack or error frame.
func (ss *session) dataReply(p *pendingData) []byte {
	m := ss.srv.metrics
	if p.err != nil {
		r := ss.srv.storeRefusal(p.err)
		if r.reason == ReasonUnavailable {
			ss.srv.warnRetry("store failed; phone told to retry later", ss.child, p.err)
		}
		m.refuse(r.reason, "ws")
		return encodeError(p.id, r)
	}
	m.messages.WithLabelValues(string(p.checked.Kind), "ws").Inc()
	m.noted(&p.checked)
	m.ackSeconds.WithLabelValues("ws").Observe(time.Since(p.start).Seconds())
	return encodeAck(&p.checked, p.id)
}
