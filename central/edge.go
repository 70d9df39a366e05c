package central

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// serveBatch answers POST /v1/edge/batches.
func (s *Server) serveBatch(ctx *fasthttp.RequestCtx) {
	result := s.handleBatch(ctx, time.Now())
	s.metrics.batches.WithLabelValues(result).Inc()
}

// handleBatch answers a batch from its headers alone until its token,
// then the home's fairness limits, have let it in: only then is the body
// read, streaming, within the body budget.
func (s *Server) handleBatch(ctx *fasthttp.RequestCtx, now time.Time) string {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: POST a batch")
		return BatchBadMethod
	}
	home, result, ok := s.authEdge(ctx, endpointBatches)
	if !ok {
		return result
	}
	if r := s.guard.homes.enter(home.ID, now); r != nil {
		return s.refuseLimit(ctx, endpointBatches, *r)
	}
	defer s.guard.homes.leave(home.ID)
	if r := s.guard.flight.enter(); r != nil { // shed.go
		return s.refuseLimit(ctx, endpointBatches, *r)
	}
	defer s.guard.flight.leave()
	lease := s.guard.budget.lease()
	defer lease.release() // after the reply: the decoded batch lives until then
	batch, err := s.readBatch(ctx, lease)
	if err != nil {
		return s.refuseBatch(ctx, home, err)
	}
	dbctx, cancel := s.dbContext()
	defer cancel()
	clock := MeasureEdgeClock(batch.SentAt, now, s.cfg.ClockTolerance)
	results, err := s.applyBatch(dbctx, home.ID, batch, clock)
	if err != nil {
		return s.storeFailed(ctx, "apply batch", home, err)
	}
	s.recordClock(dbctx, home, clock)
	s.countResults(results)
	writeBatchReply(ctx, batch.Messages, results)
	s.log.Debug("batch applied", "home", home.ID, "edge", clip(batch.EdgeID), "messages", len(results),
		"offset", clock.Offset.Round(time.Millisecond), "took", time.Since(now).Round(time.Microsecond))
	return BatchOK
}

// readBatch reads and decodes the body of an admitted batch. A body
// declared larger than max_batch_bytes is refused before a byte of it is
// read; the token being good, the body gets batch_read_timeout to arrive
// (a large batch over a slow home uplink), where the headers had only
// read_timeout.
func (s *Server) readBatch(ctx *fasthttp.RequestCtx, lease *bodyLease) (Batch, error) {
	sent := ctx.Request.Header.ContentLength()
	if sent > int(s.cfg.MaxBatchBytes) {
		return Batch{}, &BatchError{Status: fasthttp.StatusRequestEntityTooLarge,
			Reason: fmt.Sprintf("batch body larger than %d bytes as sent: split it", s.cfg.MaxBatchBytes)}
	}
	lim := s.limits()
	lim.MaxSent, lim.SizeHint, lim.Take = int64(s.cfg.MaxBatchBytes), int64(max(sent, 0)), lease.takeBody
	_ = ctx.SetReadDeadline(time.Now().Add(s.cfg.BatchReadTimeout)) // fails only on a closed conn, which the read reports
	return ReadBatch(requestBody(ctx), string(ctx.Request.Header.ContentEncoding()), lim)
}

func (s *Server) limits() BatchLimits {
	return BatchLimits{MaxDecompressed: int64(s.cfg.MaxBatchDecompressedBytes), MaxMessages: s.cfg.MaxBatchMessages}
}

// refuseBatch answers a batch that could not be read or decoded.
func (s *Server) refuseBatch(ctx *fasthttp.RequestCtx, home store.Home, err error) string {
	var be *BatchError
	if !errors.As(err, &be) {
		panic("BUG: ReadBatch returned " + err.Error())
	}
	switch be.Status {
	case fasthttp.StatusServiceUnavailable:
		return s.refuseLimit(ctx, endpointBatches, refusal{be.Status, limitMemory, be.Reason, busyRetryAfter})
	case fasthttp.StatusRequestTimeout:
		ctx.SetConnectionClose()
	}
	writeBatchError(ctx, be.Status, be.Reason)
	s.log.Info("batch refused", "home", home.ID, "status", be.Status, "reason", be.Reason)
	switch be.Status {
	case fasthttp.StatusRequestEntityTooLarge:
		return BatchTooLarge
	case fasthttp.StatusUnsupportedMediaType:
		return BatchBadEncoding
	case fasthttp.StatusRequestTimeout:
		return BatchTimeout
	}
	return BatchBadRequest
}

// storeFailed answers a database failure: 503 + Retry-After when retrying
// may work, 500 otherwise. The edge keeps the batch either way.
func (s *Server) storeFailed(ctx *fasthttp.RequestCtx, op string, home store.Home, err error) string {
	if r := dbBusy(err, s.cfg.RetryAfter); r != nil { // shed.go
		return s.refuseLimit(ctx, endpointBatches, *r)
	}
	if unavailable(err) {
		if ok, held := s.warn.Allow(10 * time.Second); ok {
			s.log.Warn("database unavailable; edges told to retry", "op", op, "home", home.ID, "retry_after", s.cfg.RetryAfter, "err", err, "similar_held_back", held)
		}
		writeUnavailable(ctx, s.cfg.RetryAfter, "database unavailable; retry later")
		return BatchUnavailable
	}
	s.log.Error("database failed; edge will retry", "op", op, "home", home.ID, "err", err)
	writeError(ctx, fasthttp.StatusInternalServerError, "internal error; retry later")
	return BatchFailed
}

// applyBatch checks every message, upserts the good ones for home in one
// transaction (which also counts them for the console's messages per day,
// store.ConsoleState) and returns one result per message, in order. An
// error means nothing was stored.
func (s *Server) applyBatch(ctx context.Context, home string, b Batch, clock EdgeClock) ([]store.Result, error) {
	msgs, idx, results := prepareBatch(b.Messages, b.Unreadable, clock, s.cfg.Retention())
	if len(msgs) > 0 {
		t := time.Now()
		applied, err := s.store.Apply(ctx, home, msgs)
		s.metrics.applySeconds.Observe(time.Since(t).Seconds())
		if err != nil {
			return nil, err
		}
		if len(applied) != len(msgs) {
			panic(fmt.Sprintf("BUG: store.Apply returned %d results for %d messages", len(applied), len(msgs)))
		}
		for i, r := range applied {
			results[idx[i]] = r
		}
	}
	return results, nil
}

// WireResults pairs each message's Result with its seq for the reply.
func WireResults(ms []hearth.BatchMessage, results []store.Result) []hearth.BatchResult {
	out := make([]hearth.BatchResult, len(results))
	for i, r := range results {
		out[i] = hearth.BatchResult{Seq: ms[i].Seq, Status: r.Status, Error: r.Error}
		if r.Status == store.StatusRejected {
			out[i].Code = r.Code
		}
		if r.Status != store.StatusOK && r.Status != store.StatusRejected {
			panic("BUG: result status " + r.Status)
		}
	}
	return out
}

// PrepareMessages checks batch messages with the domain's rules and maps
// their received_at to central's clock. Each message is judged against
// its own received_at (so nothing ages into rejection while it waits at
// the edge; the prune removes old rows later) in ModeStrict: an edge
// forwards only the canonical form. It returns the messages to apply, the
// index in ms of each, and one Result per message of ms: the rejections
// filled in, the rest left for the store.
func PrepareMessages(ms []hearth.BatchMessage, clock EdgeClock, retention time.Duration) ([]hearth.Message, []int, []store.Result) {
	return prepareBatch(ms, nil, clock, retention)
}

// prepareBatch is PrepareMessages for a batch whose unreadable messages
// (by index) are rejected with the reason found when decoding them.
func prepareBatch(ms []hearth.BatchMessage, unreadable map[int]error, clock EdgeClock, retention time.Duration) ([]hearth.Message, []int, []store.Result) {
	results := make([]store.Result, len(ms))
	msgs := make([]hearth.Message, 0, len(ms))
	idx := make([]int, 0, len(ms))
	for i := range ms {
		if err := unreadable[i]; err != nil {
			results[i] = rejection(err)
			continue
		}
		m, err := prepareMessage(&ms[i], clock, retention)
		if err != nil {
			results[i] = rejection(err)
			continue
		}
		msgs = append(msgs, m)
		idx = append(idx, i)
	}
	return msgs, idx, results
}

func prepareMessage(bm *hearth.BatchMessage, clock EdgeClock, retention time.Duration) (hearth.Message, error) {
	kind := hearth.Kind(bm.Type)
	switch {
	case bm.ChildHash == "":
		return hearth.Message{}, invalid("child_hash", "is required")
	case hearth.CheckChildHash(bm.ChildHash) != nil:
		return hearth.Message{}, invalid("child_hash", hearth.CheckChildHash(bm.ChildHash).Error())
	case bm.Type == "":
		return hearth.Message{}, invalid("type", "is required")
	case !kind.Valid():
		return hearth.Message{}, &hearth.InvalidError{Code: hearth.CodeUnknownType, Field: "type", Reason: fmt.Sprintf("unknown message type %q", clip(bm.Type))}
	case bm.Data == nil:
		return hearth.Message{}, invalid("data", "is required")
	case bm.ReceivedAt == "":
		return hearth.Message{}, invalid("received_at", "is required (RFC 3339)")
	}
	recv, err := time.Parse(time.RFC3339Nano, bm.ReceivedAt)
	if err != nil {
		return hearth.Message{}, invalid("received_at", fmt.Sprintf("%q is not an RFC 3339 time", clip(bm.ReceivedAt)))
	}
	recv = clock.ReceivedAt(recv, bm.Synced).UTC()
	w := hearth.Window{Now: recv, MaxAge: retention, MaxFuture: hearth.DefaultMaxFuture}
	p, err := hearth.CheckStrict(kind, bm.Data, w)
	if err != nil {
		return hearth.Message{}, err
	}
	// Data stays as the edge sent it: the store writes from the payload.
	return hearth.Message{ChildHash: bm.ChildHash, Kind: kind, ReceivedAt: recv, Synced: true, Via: bm.Via, Data: bm.Data, Payload: p}, nil
}

func invalid(field, reason string) error {
	return &hearth.InvalidError{Code: hearth.CodeInvalid, Field: field, Reason: reason}
}

// rejection turns a validation error into a rejected Result.
func rejection(err error) store.Result {
	code := hearth.InvalidCode(err)
	if code == "" {
		code = hearth.CodeInvalid
	}
	return store.Result{Status: store.StatusRejected, Code: code, Error: err.Error()}
}

// countResults counts a batch's results per status and code: one
// look-up of the labelled counter per distinct pair, not per message.
func (s *Server) countResults(results []store.Result) {
	type label struct{ status, code string }
	counts := make(map[label]int, 2)
	for _, r := range results {
		code := codeNone
		if r.Status != store.StatusOK {
			code = r.Code
		}
		counts[label{r.Status, code}]++
	}
	for l, n := range counts {
		s.metrics.messages.WithLabelValues(l.status, l.code).Add(float64(n))
	}
}
