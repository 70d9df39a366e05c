package ingest

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth"
)

// handle turns one frame into its reply. Data frames start being stored
// here; their reply waits for the store in the writer.
func (ss *session) handle(mt int, b []byte, tooLarge bool) *reply {
	switch {
	case tooLarge && ss.child == "":
		return ss.refuse(nil, refusal{msg: "not authenticated: before {\"type\":\"auth\",\"child_hash\":\"…\"} frames are at most " + strconv.Itoa(preAuthFrameLimit) + " bytes", reason: ReasonNotAuth})
	case tooLarge:
		return ss.refuse(nil, refusal{msg: "frame too large: at most " + strconv.Itoa(ss.srv.cfg.MaxFrameBytes) + " bytes", reason: ReasonTooLarge})
	case mt == websocket.BinaryMessage:
		return ss.refuse(nil, refusal{msg: "binary frames are not supported: send JSON text frames", reason: ReasonBinary})
	case !utf8.Valid(b):
		// As the seed's server did: the frame breaks the WebSocket
		// protocol (RFC 6455 §8.1), so the connection closes with 1007
		// once the earlier frames are answered.
		rep := ss.refuse(nil, refusal{msg: "text frame is not valid UTF-8; closing the connection", reason: ReasonInvalidUTF8})
		rep.closeCode, rep.closeText = websocket.CloseInvalidFramePayloadData, "invalid UTF-8"
		return rep
	}
	f, err := DecodeFrame(b)
	if err != nil {
		return ss.refuse(nil, refusal{msg: err.Error(), reason: ReasonMalformed})
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
		return ss.refuse(id, refusal{msg: fmt.Sprintf("unknown message type %q: expected screen_time, location, site_access, auth or ping", clipText(f.Type)), reason: ReasonUnknownType})
	}
}

func (ss *session) refuse(id []byte, r refusal) *reply {
	ss.srv.metrics.refuse(r.reason, "ws")
	ss.srv.refusedChild(ss.child, r.reason)
	return &reply{body: encodeError(id, r)}
}

// auth runs the auth flow's handshake frame.
func (ss *session) auth(id []byte, hash string) *reply {
	if ss.child != "" {
		return ss.refuse(id, refusal{msg: "already authenticated", reason: ReasonMalformed})
	}
	if hash == "" {
		rep := ss.refuse(id, refusal{msg: "child_hash is required", reason: ReasonAuthMissingHash})
		rep.closeCode, rep.closeText = CloseAuthMissingHash, "child_hash required"
		return rep
	}
	ok, err := false, hearth.CheckChildHash(hash)
	if err == nil {
		ok, err = ss.srv.known(hash)
		if err != nil {
			rep := ss.refuse(id, refusal{msg: "cannot check the child now; retry later", reason: ReasonUnavailable, retryAfter: ss.srv.cfg.RetryAfter})
			rep.closeCode, rep.closeText = websocket.CloseTryAgainLater, "retry later"
			return rep
		}
	}
	if !ok {
		rep := ss.refuse(id, refusal{msg: "unknown child", reason: ReasonUnknownChild})
		ss.srv.refusedChild(hash, ReasonUnknownChild)
		rep.closeCode, rep.closeText = CloseUnknownChild, "unknown child"
		return rep
	}
	ss.child = hash
	ss.guard.Established() // no longer pending: the WebSocket limits apply
	ss.connected()
	_ = ss.extendDeadline() // a failure shows in the next read
	return &reply{body: encodeAuthSuccess(id, hash)}
}

// data checks a data frame and starts storing it.
func (ss *session) data(id []byte, kind hearth.Kind, f Frame) *reply {
	start := time.Now()
	switch {
	case ss.child == "":
		return ss.refuse(id, refusal{msg: `not authenticated: send {"type":"auth","child_hash":"…"} first`, reason: ReasonNotAuth})
	case f.ChildHash != "" && f.ChildHash != ss.child:
		return ss.refuse(id, refusal{msg: "child_hash in the frame does not match the connection's child", reason: ReasonChildMismatch})
	case !ss.bucket.take(start):
		return ss.refuse(id, refusal{msg: fmt.Sprintf("rate limit exceeded: at most %g messages per second; resend later", ss.srv.cfg.RatePerSecond),
			reason: ReasonRateLimited, retryAfter: time.Duration(float64(time.Second) / ss.srv.cfg.RatePerSecond)})
	case f.Data == nil:
		return ss.refuse(id, refusal{msg: `"data" is required and must be an object`, reason: ReasonInvalid})
	}
	c, err := hearth.Check(kind, f.Data, hearth.Rules{Mode: ss.mode, Window: ss.srv.cfg.Window(), Child: ss.child})
	if err != nil {
		return ss.refuse(id, refusal{msg: err.Error(), reason: invalidReason(err)})
	}
	p := &pendingData{checked: c, id: id, start: start}
	rep := &reply{done: make(chan struct{}), data: p}
	if c.Payload.Rows() == 0 { // nothing to keep (a site_access without visits): ack at once
		close(rep.done)
		return rep
	}
	recv, synced := ss.srv.cfg.Clock()
	msg := hearth.Message{ChildHash: ss.child, Kind: kind, ReceivedAt: recv, Synced: synced, Via: hearth.ViaWS, Data: c.Data, Payload: c.Payload}
	ss.srv.storeAsync([]hearth.Message{msg}, func(errs []error) {
		p.err = errs[0]
		close(rep.done)
	})
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
