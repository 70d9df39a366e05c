package ingest

import (
	"fmt"
	"strconv"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth"
)

// handle turns one frame into its reply. Data frames start being stored
// here; their reply waits for the store in the writer.
func (ss *session) handle(mt int, b []byte, tooLarge bool) *reply {
	switch {
	case tooLarge:
		return ss.refuse(nil, ReasonTooLarge, "frame too large: at most "+strconv.Itoa(ss.srv.cfg.MaxFrameBytes)+" bytes")
	case mt == websocket.BinaryMessage:
		return ss.refuse(nil, ReasonBinary, "binary frames are not supported: send JSON text frames")
	}
	f, err := DecodeFrame(b)
	if err != nil {
		return ss.refuse(nil, ReasonMalformed, err.Error())
	}
	id := copyID(f.ID)
	switch kind := hearth.Kind(f.Type); {
	case f.Type == "ping":
		return &reply{body: encodePong(id)}
	case f.Type == "auth":
		return ss.auth(id, f.ChildHash)
	case kind.Valid():
		return ss.data(id, kind, f)
	default:
		return ss.refuse(id, ReasonUnknownType, fmt.Sprintf("unknown message type %q: expected screen_time, location, site_access, auth or ping", clipText(f.Type)))
	}
}

func (ss *session) refuse(id []byte, reason, msg string) *reply {
	ss.srv.metrics.refuse(reason, "ws")
	return &reply{body: encodeError(id, msg)}
}

// auth runs the auth flow's handshake frame.
func (ss *session) auth(id []byte, hash string) *reply {
	if ss.child != "" {
		return ss.refuse(id, ReasonMalformed, "already authenticated")
	}
	if hash == "" {
		ss.srv.metrics.refuse(ReasonAuthMissingHash, "ws")
		return &reply{body: encodeError(id, "child_hash is required"), closeCode: CloseAuthMissingHash, closeText: "child_hash required"}
	}
	ok, err := false, checkChildHash(hash)
	if err == nil {
		ok, err = ss.srv.known(hash)
		if err != nil {
			ss.srv.metrics.refuse(ReasonUnavailable, "ws")
			return &reply{body: encodeError(id, "cannot check the child now; retry later"), closeCode: websocket.CloseTryAgainLater, closeText: "retry later"}
		}
	}
	if !ok {
		ss.srv.metrics.refuse(ReasonUnknownChild, "ws")
		return &reply{body: encodeError(id, "unknown child"), closeCode: CloseUnknownChild, closeText: "unknown child"}
	}
	ss.child = hash
	ss.connected()
	_ = ss.extendDeadline() // a failure shows in the next read
	return &reply{body: encodeAuthSuccess(id, hash)}
}

// data validates a data frame and starts storing it.
func (ss *session) data(id []byte, kind hearth.Kind, f Frame) *reply {
	start := time.Now()
	switch {
	case ss.child == "":
		return ss.refuse(id, ReasonNotAuth, `not authenticated: send {"type":"auth","child_hash":"…"} first`)
	case f.ChildHash != "" && f.ChildHash != ss.child:
		return ss.refuse(id, ReasonChildMismatch, "child_hash in the frame does not match the connection's child")
	case !ss.bucket.take(start):
		return ss.refuse(id, ReasonRateLimited, fmt.Sprintf("rate limit exceeded: at most %g messages per second; resend later", ss.srv.cfg.RatePerSecond))
	case f.Data == nil:
		return ss.refuse(id, ReasonInvalid, `"data" is required and must be an object`)
	}
	c, err := hearth.Check(kind, f.Data, hearth.Rules{Window: ss.srv.cfg.Window(), Child: ss.child})
	if err != nil {
		return ss.refuse(id, invalidReason(err), err.Error())
	}
	p := &pendingData{
		msg:   hearth.Message{ChildHash: ss.child, Kind: kind, ReceivedAt: start.UTC(), Via: hearth.ViaWS, Data: c.Data, Payload: c.Payload},
		id:    id,
		start: start,
	}
	rep := &reply{done: make(chan struct{}), data: p}
	if as, ok := ss.srv.sink.(AsyncSink); ok {
		as.StoreAsync([]hearth.Message{p.msg}, func(err error) {
			p.err = err
			close(rep.done)
		})
		return rep
	}
	go func() {
		p.err = ss.srv.store([]hearth.Message{p.msg})
		close(rep.done)
	}()
	return rep
}

// copyID copies the frame's id out of the read buffer, which is reused.
func copyID(id []byte) []byte {
	if id == nil {
		return nil
	}
	return append([]byte(nil), id...)
}

// clipText shortens client-supplied text echoed in an error.
func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// tokenBucket limits a connection's data frames per second.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *tokenBucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
