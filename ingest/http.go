package ingest

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/netguard"
	"github.com/valyala/fasthttp"
)

// BodyReadLimit is the MaxRequestBodySize to give the fasthttp server for a
// frame limit: bodies up to it are read whole and refused with a clean 413
// by the handler; only larger ones are cut off by fasthttp before reading,
// which a client may see as a broken pipe instead of the answer.
func BodyReadLimit(maxFrameBytes int) int { return 4 * maxFrameBytes }

// HeaderProtocol selects honest status codes when set to "2".
const HeaderProtocol = "Hearth-Protocol"

// protocolMode is the decoding mode a request asks for: ModeStrict with
// "Hearth-Protocol: 2", else the seed's leniency.
func protocolMode(h *fasthttp.RequestHeader) hearth.Mode {
	if string(h.Peek(HeaderProtocol)) == "2" {
		return hearth.ModeStrict
	}
	return hearth.ModeSeed
}

// sectionResult is one section's outcome in the reply: absent, refused,
// or accepted as checked.
type sectionResult struct {
	present bool
	refused *refusal
	checked *hearth.Checked
}

// httpOutcome collects what one fallback request did.
type httpOutcome struct {
	child    string
	sections [3]sectionResult
	status   int
}

// serveHTTP answers POST /api/ingest/ in the seed's reply shape.
func (s *Server) serveHTTP(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	code := s.handleHTTP(ctx, start)
	s.metrics.httpRequests.WithLabelValues(strconv.Itoa(code)).Inc()
}

func (s *Server) handleHTTP(ctx *fasthttp.RequestCtx, start time.Time) int {
	if !ctx.IsPost() {
		s.metrics.refuse(ReasonBadMethod, "http")
		ctx.Error("method not allowed: POST a JSON body to /api/ingest/", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set("Allow", "POST")
		return fasthttp.StatusMethodNotAllowed
	}
	if len(ctx.PostBody()) > s.cfg.MaxFrameBytes {
		s.metrics.refuse(ReasonTooLarge, "http")
		ctx.Error("body too large: at most "+strconv.Itoa(s.cfg.MaxFrameBytes)+" bytes", fasthttp.StatusRequestEntityTooLarge)
		return fasthttp.StatusRequestEntityTooLarge
	}
	mode := protocolMode(&ctx.Request.Header)
	body, err := DecodeBody(ctx.PostBody(), mode)
	if err != nil {
		s.metrics.refuse(ReasonBadBody, "http")
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return fasthttp.StatusBadRequest
	}
	out := s.ingestBody(body, mode, start)
	if out.status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", RetryAfter(s.cfg.RetryAfter))
	} else if mode == hearth.ModeSeed {
		out.status = fasthttp.StatusOK // seed phones resend anything but 200
	}
	ctx.SetStatusCode(out.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(out.encode())
	return out.status
}

// ingestBody checks and stores the sections of one request.
func (s *Server) ingestBody(body Body, mode hearth.Mode, start time.Time) httpOutcome {
	out := httpOutcome{child: body.ChildHash}
	for i, sec := range body.Sections {
		out.sections[i].present = sec.Present
		if sec.Err != "" {
			out.sections[i].refused = &refusal{msg: sec.Err, reason: sec.Reason}
		}
	}
	if ok, err := s.httpChildKnown(body.ChildHash); err != nil || !ok {
		r := refusal{msg: "unknown child", reason: ReasonUnknownChild}
		if err != nil {
			r = refusal{msg: "cannot check the child now; retry later", reason: ReasonUnavailable, retryAfter: s.cfg.RetryAfter}
		}
		out.failAll(r)
	} else {
		s.storeSections(body, mode, &out, start)
	}
	out.status = out.worstStatus()
	s.count(&out)
	return out
}

func (s *Server) httpChildKnown(hash string) (bool, error) {
	if hearth.CheckChildHash(hash) != nil {
		return false, nil
	}
	return s.known(hash)
}

// storeSections checks the usable sections and stores those with rows;
// each section's result is the truth about its own message.
func (s *Server) storeSections(body Body, mode hearth.Mode, out *httpOutcome, start time.Time) {
	window := s.cfg.Window()
	recv, synced := s.cfg.Clock()
	var msgs []hearth.Message
	var idx []int
	for i, sec := range body.Sections {
		if !sec.Present || sec.Err != "" {
			continue
		}
		kind := hearth.Kinds[i]
		c, err := hearth.Check(kind, sec.Data, hearth.Rules{Mode: mode, Window: window, Child: body.ChildHash})
		if err != nil {
			out.sections[i].refused = &refusal{msg: err.Error(), reason: invalidReason(err)}
			continue
		}
		c.Notes = append(sec.Notes, c.Notes...)
		out.sections[i].checked = &c
		if c.Payload.Rows() > 0 {
			msgs = append(msgs, hearth.Message{ChildHash: body.ChildHash, Kind: kind, ReceivedAt: recv, Synced: synced, Via: hearth.ViaHTTP, Data: c.Data, Payload: c.Payload})
			idx = append(idx, i)
		}
	}
	if len(msgs) == 0 {
		return
	}
	for k, err := range s.store(msgs) {
		if err == nil {
			continue
		}
		r := s.storeRefusal(err)
		if r.reason == ReasonUnavailable {
			s.warnRetry("store failed; phone told to retry later", out.child, err)
		}
		out.sections[idx[k]].refused, out.sections[idx[k]].checked = &r, nil
	}
	s.metrics.ackSeconds.WithLabelValues("http").Observe(time.Since(start).Seconds())
}

// count counts each section's refusal or acceptance.
func (s *Server) count(out *httpOutcome) {
	for i, r := range out.sections {
		switch {
		case r.refused != nil:
			s.metrics.refuse(r.refused.reason, "http")
			s.refusedChild(out.child, r.refused.reason)
		case r.checked != nil:
			s.metrics.messages.WithLabelValues(string(hearth.Kinds[i]), "http").Inc()
			s.metrics.noted(r.checked)
		}
	}
}

func (o *httpOutcome) failAll(r refusal) {
	for i := range o.sections {
		if o.sections[i].present {
			o.sections[i].refused = &r
		}
	}
}

// worstStatus is the honest (protocol 2) status of the request: 503 when
// anything must be resent, then 403 for a child refusal, then 422 for
// invalid data.
func (o *httpOutcome) worstStatus() int {
	status := fasthttp.StatusOK
	for _, r := range o.sections {
		if r.refused != nil && statusRank(statusFor(r.refused.reason)) > statusRank(status) {
			status = statusFor(r.refused.reason)
		}
	}
	return status
}

// statusRank orders statuses by what the phone must do first: resend
// (503) outranks a child refusal (403), which outranks invalid data (422).
func statusRank(status int) int {
	switch status {
	case fasthttp.StatusServiceUnavailable:
		return 3
	case fasthttp.StatusForbidden:
		return 2
	case fasthttp.StatusUnprocessableEntity:
		return 1
	}
	return 0
}

func statusFor(reason string) int {
	switch codeFor(reason) {
	case CodeRetryLater, CodeRateLimited:
		return fasthttp.StatusServiceUnavailable
	case CodeUnknownChild, CodeChildMismatch:
		return fasthttp.StatusForbidden
	}
	return fasthttp.StatusUnprocessableEntity
}

// encode builds the seed's reply: each section "not provided",
// {"status":"ok",…} with the seed's result keys and the notes, or
// {"error":"…","code":…}.
func (o *httpOutcome) encode() []byte {
	b := []byte(`{"child_hash":`)
	b = appendString(b, o.child)
	for i, k := range hearth.Kinds {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		r := o.sections[i]
		switch {
		case !r.present:
			b = append(b, `"not provided"`...)
		case r.refused != nil:
			b = append(b, `{"error":`...)
			b = appendString(b, r.refused.msg)
			b = appendCode(b, *r.refused)
			b = append(b, '}')
		default:
			b = append(b, `{"status":"ok"`...)
			b = appendResult(b, r.checked)
			b = append(b, '}')
		}
	}
	return append(b, '}')
}

// RequestError answers a request fasthttp could not read (use it as the
// server's ErrorHandler): a body over the limit gets 413 with a reason and
// is counted like every other refusal.
func (s *Server) RequestError(ctx *fasthttp.RequestCtx, err error) {
	var netErr net.Error
	code, reason, msg := fasthttp.StatusBadRequest, ReasonBadBody, "malformed HTTP request"
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		code, reason, msg = fasthttp.StatusRequestEntityTooLarge, ReasonTooLarge, "body too large: at most "+strconv.Itoa(s.cfg.MaxFrameBytes)+" bytes"
	case errors.Is(err, netguard.ErrEvicted):
		// Counted by the guard when it evicted the connection.
		s.metrics.httpRequests.WithLabelValues("503").Inc()
		s.unavailable(ctx, netguard.ErrEvicted.Error())
		return
	case errors.Is(err, netguard.ErrTooSlow):
		code, reason, msg = fasthttp.StatusRequestTimeout, ReasonTooSlow, fmt.Sprintf("request arrived slower than %d bytes per second; resend it", s.cfg.MinBodyRate)
	case errors.As(err, &netErr) && netErr.Timeout():
		code, reason, msg = fasthttp.StatusRequestTimeout, ReasonTimeout, fmt.Sprintf("request not received in time (headers within %s, the body within %s)", s.cfg.HeaderTimeout, s.cfg.BodyTimeout)
	}
	s.metrics.refuse(reason, "http")
	s.metrics.httpRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	ctx.Error(msg, code)
}
