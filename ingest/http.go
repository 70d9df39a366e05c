package ingest

import (
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/guardianai/hearth"
	"github.com/valyala/fasthttp"
)

// BodyReadLimit is the MaxRequestBodySize to give the fasthttp server for a
// frame limit: bodies up to it are read whole and refused with a clean 413
// by the handler; only larger ones are cut off by fasthttp before reading,
// which a client may see as a broken pipe instead of the answer.
func BodyReadLimit(maxFrameBytes int) int { return 4 * maxFrameBytes }

// HeaderProtocol selects honest status codes when set to "2".
const HeaderProtocol = "Hearth-Protocol"

// sectionResult is one section's outcome in the reply.
type sectionResult struct {
	present bool
	err     string
	reason  string
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
	body, err := DecodeBody(ctx.PostBody())
	if err != nil {
		s.metrics.refuse(ReasonBadBody, "http")
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return fasthttp.StatusBadRequest
	}
	v2 := string(ctx.Request.Header.Peek(HeaderProtocol)) == "2"
	out := s.ingestBody(body, start)
	if out.status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", RetryAfter(s.cfg.RetryAfter))
	} else if !v2 {
		out.status = fasthttp.StatusOK // seed phones resend anything but 200
	}
	ctx.SetStatusCode(out.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(out.encode())
	return out.status
}

// ingestBody validates and stores the sections of one request.
func (s *Server) ingestBody(body Body, start time.Time) httpOutcome {
	out := httpOutcome{child: body.ChildHash, status: fasthttp.StatusOK}
	for i, sec := range body.Sections {
		out.sections[i] = sectionResult{present: sec.Present, err: sec.Err, reason: sec.Reason}
	}
	if ok, err := s.httpChildKnown(body.ChildHash); err != nil || !ok {
		msg, reason, status := "unknown child", ReasonUnknownChild, fasthttp.StatusForbidden
		if err != nil {
			msg, reason, status = "cannot check the child now; retry later", ReasonUnavailable, fasthttp.StatusServiceUnavailable
		}
		out.failAll(msg, reason)
		out.status = status
		s.countRefusals(&out)
		return out
	}
	msgs, idx := s.validateSections(body, &out, start)
	if len(msgs) > 0 {
		if err := s.store(msgs); err != nil {
			s.storeFailed(&out, idx, err)
		} else {
			for _, m := range msgs {
				s.metrics.messages.WithLabelValues(string(m.Kind), "http").Inc()
			}
			s.metrics.ackSeconds.WithLabelValues("http").Observe(time.Since(start).Seconds())
		}
	}
	out.status = out.worstStatus()
	s.countRefusals(&out)
	return out
}

func (s *Server) httpChildKnown(hash string) (bool, error) {
	if checkChildHash(hash) != nil {
		return false, nil
	}
	return s.known(hash)
}

// validateSections returns the messages to store and their section indexes.
func (s *Server) validateSections(body Body, out *httpOutcome, start time.Time) ([]hearth.Message, []int) {
	var msgs []hearth.Message
	var idx []int
	window := s.cfg.Window()
	for i, sec := range body.Sections {
		if !sec.Present || sec.Err != "" {
			continue
		}
		kind := hearth.Kinds[i]
		c, err := hearth.Check(kind, sec.Data, hearth.Rules{Window: window, Child: body.ChildHash})
		if err != nil {
			out.sections[i].err, out.sections[i].reason = err.Error(), invalidReason(err)
			continue
		}
		msgs = append(msgs, hearth.Message{ChildHash: body.ChildHash, Kind: kind, ReceivedAt: start.UTC(), Via: hearth.ViaHTTP, Data: c.Data, Payload: c.Payload})
		idx = append(idx, i)
	}
	return msgs, idx
}

func (s *Server) storeFailed(out *httpOutcome, idx []int, err error) {
	msg, reason := storeRefusal(err)
	if reason == ReasonUnavailable {
		s.log.Warn("store failed; phone told to retry", "child", shortHash(out.child), "err", err)
	}
	for _, i := range idx {
		out.sections[i].err, out.sections[i].reason = msg, reason
	}
}

func (s *Server) countRefusals(out *httpOutcome) {
	for _, r := range out.sections {
		if r.present && r.err != "" {
			s.metrics.refuse(r.reason, "http")
		}
	}
}

func (o *httpOutcome) failAll(msg, reason string) {
	for i := range o.sections {
		if o.sections[i].present {
			o.sections[i].err, o.sections[i].reason = msg, reason
		}
	}
}

// worstStatus is the honest (protocol 2) status of the request: 503 when
// anything must be resent, then 403 for a child refusal, 422 for invalid data.
func (o *httpOutcome) worstStatus() int {
	status := fasthttp.StatusOK
	for _, r := range o.sections {
		if !r.present || r.err == "" {
			continue
		}
		status = max(status, statusFor(r.reason))
	}
	return status
}

func statusFor(reason string) int {
	switch reason {
	case ReasonFull, ReasonUnavailable:
		return fasthttp.StatusServiceUnavailable
	case ReasonUnknownChild, ReasonChildMismatch:
		return fasthttp.StatusForbidden
	}
	return fasthttp.StatusUnprocessableEntity
}

// encode builds the seed's reply: each section "not provided", {"status":"ok"}
// or {"error":"…"}.
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
		case r.err != "":
			b = append(b, `{"error":`...)
			b = appendString(b, r.err)
			b = append(b, '}')
		default:
			b = append(b, `{"status":"ok"}`...)
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
	case errors.As(err, &netErr) && netErr.Timeout():
		code, reason, msg = fasthttp.StatusRequestTimeout, ReasonTimeout, "request not received in time"
	}
	s.metrics.refuse(reason, "http")
	s.metrics.httpRequests.WithLabelValues(strconv.Itoa(code)).Inc()
	ctx.Error(msg, code)
}
