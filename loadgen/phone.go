package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

const (
	backoffMin = 50 * time.Millisecond
	backoffMax = time.Second
)

// phone is one simulated device. Only its own goroutine touches it.
type phone struct {
	cfg       *Config
	t         target
	child     string
	childJSON []byte
	gen       *generator
	made      int        // messages generated
	pending   []*message // unacked, oldest first; a WS phone's in-flight frames lead
	st        stats
	acks      *ackLog
	dialer    *websocket.Dialer
	http      *fasthttp.HostClient
}

// mayGenerate reports whether the phone may make a new message.
func (p *phone) mayGenerate(sendCtx context.Context) bool {
	return sendCtx.Err() == nil && (p.cfg.Messages == 0 || p.made < p.cfg.Messages)
}

func (p *phone) next() *message {
	p.made++
	return p.gen.next()
}

// acked books an ack of m received at now.
func (p *phone) acked(m *message, now time.Time) {
	p.st.acked++
	p.st.lat.Record(now.Sub(m.sentAt))
	p.acks.record(p.child, m.kind, m.key)
}

func (p *phone) refusedWith(r string) {
	p.st.errors++
	p.st.reason("error reply: " + r)
}

// sleep waits d with full jitter; false means ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// runWS sends over WebSocket until Messages are acked or sendCtx ends,
// reconnecting and resending what was not acked whenever the connection
// breaks. Cancelling ctx closes the connection at once.
func (p *phone) runWS(ctx, sendCtx context.Context) {
	defer func() { p.st.unacked += uint64(len(p.pending)) }()
	for connected := false; ; connected = true {
		c, err := p.connect(sendCtx)
		if err != nil {
			if sendCtx.Err() == nil {
				p.st.gaveUp++
			}
			return
		}
		if connected {
			p.st.reconnects++
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		err = p.session(sendCtx, c)
		stop()
		if err == nil {
			deadline := time.Now().Add(time.Second)
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
			c.Close()
			return
		}
		c.Close()
		if ctx.Err() != nil {
			return
		}
		p.st.lost++
		p.st.reason("connection lost: " + reason(err))
		if sendCtx.Err() != nil {
			return
		}
	}
}

// connect dials until it succeeds, the refusal is permanent, sendCtx
// ends, or ReconnectTimeout has passed.
func (p *phone) connect(sendCtx context.Context) (*websocket.Conn, error) {
	first, backoff := time.Now(), backoffMin
	for {
		c, err := dial(sendCtx, p.dialer, p.t, p.cfg.Mode, p.child, p.cfg.Timeout)
		if err == nil {
			return c, nil
		}
		if sendCtx.Err() != nil {
			return nil, err
		}
		p.st.refused++
		p.st.reason("connect failed: " + reason(err))
		var rf *refusal
		if errors.As(err, &rf) && rf.permanent || time.Since(first) >= p.cfg.ReconnectTimeout {
			return nil, err
		}
		if !sleep(sendCtx, backoff) {
			return nil, sendCtx.Err()
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// session writes frames, keeping up to Pipeline in flight, and matches
// the replies in order. It returns nil when there is nothing left to send
// and every frame is answered, or the error that broke the connection.
func (p *phone) session(sendCtx context.Context, c *websocket.Conn) error {
	inFlight := 0 // p.pending[:inFlight] are written on this connection
	for {
		for inFlight < p.cfg.Pipeline {
			var m *message
			switch {
			case inFlight < len(p.pending):
				m = p.pending[inFlight]
			case p.mayGenerate(sendCtx):
				m = p.next()
				p.pending = append(p.pending, m)
			}
			if m == nil {
				break
			}
			if err := p.write(c, m); err != nil {
				return err
			}
			inFlight++
		}
		if inFlight == 0 {
			return nil
		}
		r, err := readReply(c, time.Now().Add(p.cfg.Timeout))
		if err != nil {
			return err
		}
		if r.Type == "pong" || r.Type == "ping" {
			continue // app-level keepalive, not an answer to a frame
		}
		m := p.pending[0]
		p.pending[0] = nil
		p.pending = p.pending[1:]
		inFlight--
		p.answer(m, r)
	}
}

func (p *phone) write(c *websocket.Conn, m *message) error {
	if m.tries > 0 {
		p.st.resent++
	}
	m.tries++
	m.sentAt = time.Now()
	p.st.sent++
	c.SetWriteDeadline(m.sentAt.Add(p.cfg.Timeout))
	return c.WriteMessage(websocket.TextMessage, m.frame())
}

// answer books the reply r to m: an ack only if it is a success for m's
// kind and, when it echoes an id, m's id.
func (p *phone) answer(m *message, r reply) {
	now := time.Now()
	switch {
	case r.Type == "error":
		p.refusedWith(r.Message)
	case r.Type != "ack":
		p.refusedWith("unexpected reply type " + strconv.Quote(r.Type))
	case r.Status != "success":
		p.refusedWith("ack with status " + strconv.Quote(r.Status))
	case r.MessageType != "" && r.MessageType != m.kind:
		p.refusedWith("ack for " + r.MessageType + " answering a " + m.kind)
	case len(r.ID) > 0 && string(bytes.Trim(r.ID, `"`)) != strconv.FormatUint(m.id, 10):
		p.refusedWith("ack id " + string(r.ID) + " out of order")
	default:
		p.acked(m, now)
	}
}

// runHTTP posts one message per request until Messages are answered or
// sendCtx ends. A request that fails on the network is retried (the phone
// keeps the message) until ReconnectTimeout has passed.
func (p *phone) runHTTP(ctx, sendCtx context.Context) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(p.t.httpURL)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set("Hearth-Protocol", "2")
	for p.mayGenerate(sendCtx) {
		if !p.post(ctx, sendCtx, req, resp, p.next()) {
			return
		}
	}
}

// post sends m until the server answers; false means the phone gives up.
func (p *phone) post(ctx, sendCtx context.Context, req *fasthttp.Request, resp *fasthttp.Response, m *message) bool {
	req.SetBodyRaw(m.body(p.childJSON))
	first, backoff := time.Time{}, backoffMin
	for {
		m.sentAt = time.Now()
		err := p.http.DoTimeout(req, resp, p.cfg.Timeout)
		var oe *net.OpError
		dialFailed := errors.As(err, &oe) && oe.Op == "dial"
		if !dialFailed { // the request went out, at least partly
			if m.tries > 0 {
				p.st.resent++
			}
			m.tries++
			p.st.sent++
		}
		if err == nil {
			if !first.IsZero() {
				p.st.reconnects++
			}
			p.httpAnswer(m, resp)
			return true
		}
		if ctx.Err() != nil {
			p.giveUp(m, false)
			return false
		}
		if dialFailed {
			p.st.refused++
			p.st.reason("connect failed: " + reason(err))
		} else {
			p.st.lost++
			p.st.reason("connection lost: " + reason(err))
		}
		if first.IsZero() {
			first = time.Now()
		}
		if sendCtx.Err() != nil || time.Since(first) >= p.cfg.ReconnectTimeout || !sleep(sendCtx, backoff) {
			p.giveUp(m, sendCtx.Err() == nil)
			return false
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// giveUp books m as never answered; gaveUp tells whether the phone stops
// because it could not reach the server (not because the run ended).
func (p *phone) giveUp(m *message, gaveUp bool) {
	if m.tries > 0 {
		p.st.unacked++
	}
	if gaveUp {
		p.st.gaveUp++
	}
}

// httpAnswer books the response to m: an ack only for 200 with the
// section of m's kind {"status":"ok"}.
func (p *phone) httpAnswer(m *message, resp *fasthttp.Response) {
	now := time.Now()
	var body map[string]json.RawMessage
	_ = json.Unmarshal(resp.Body(), &body)
	section := body[m.kind]
	var obj struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	_ = json.Unmarshal(section, &obj)
	code := resp.StatusCode()
	switch {
	case code == fasthttp.StatusOK && obj.Status == "ok":
		p.acked(m, now)
	case obj.Error != "":
		p.refusedWith("HTTP " + strconv.Itoa(code) + ": " + obj.Error)
	case len(section) > 0:
		p.refusedWith("HTTP " + strconv.Itoa(code) + ": " + m.kind + " " + clip(string(section)))
	default:
		p.refusedWith("HTTP " + strconv.Itoa(code) + ": " + clip(string(resp.Body())))
	}
}

// clip bounds a server text quoted in a reason.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
