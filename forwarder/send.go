package forwarder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/outbox"
)

// maxReplyBytes bounds how much of an answer is read: a batch's results
// take ~50 bytes per message.
const maxReplyBytes = 16 << 20

// maxRetryAfter bounds a Retry-After that central (or a proxy) sends.
const maxRetryAfter = time.Hour

// Labels of hearth_forward_batches_total.
const (
	resultOK           = "ok"           // central answered for every message; none refused
	resultRejected     = "rejected"     // central answered for every message; some went to the dead letters
	resultRetry        = "retry"        // 5xx, network error or missing results: kept, retried with backoff
	resultThrottled    = "throttled"    // 429: central asks this home to slow down; kept, sent again after Retry-After
	resultSplit        = "split"        // 413: sent again in halves
	resultUnauthorized = "unauthorized" // 401/403: kept, retried every max backoff
	resultRefused      = "refused"      // 400 or another 4xx refusal of the whole batch: kept, retried every max backoff
	resultError        = "error"        // an answer we cannot use, or the outbox unreadable: kept, retried with backoff
)

// outcome is what one batch came to.
type outcome struct {
	label      string
	err        error
	retryAfter time.Duration
	status     int // central's HTTP status; 0 when none came
}

// wait is the pause after an outcome, and the state meanwhile.
type wait struct {
	d     time.Duration
	state State
}

// reply is central's answer to one request.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// send posts fl's batch (read by the outbox into its JSON, after the
// head) and keeps central's reply; it runs on a goroutine of its own and
// touches nothing but fl.
func (fl *flight) send(ctx context.Context, f *Forwarder) {
	fl.batch.JSON = closeBatch(fl.batch.JSON)
	if err := gzipInto(&fl.zipped, fl.batch.JSON); err != nil {
		panic("BUG: gzip into memory: " + err.Error())
	}
	fl.reply, fl.err = f.do(ctx, http.MethodPost, hearth.PathEdgeBatches, fl.zipped.Bytes())
}

// settleFlight acts on a batch's reply: it deletes, dead-letters or keeps.
func (f *Forwarder) settleFlight(fl *flight) outcome {
	if fl.err != nil {
		return outcome{label: resultRetry, err: fmt.Errorf("send batch of %d: %w", len(fl.batch.Seqs), fl.err)}
	}
	o := f.answer(fl, fl.reply)
	switch {
	case o.label == resultOK || o.label == resultRejected:
		f.stored(fl.batch.Seqs)
	case o.label == resultRetry && (o.status == http.StatusInternalServerError || o.status == http.StatusNotImplemented) && o.retryAfter == 0:
		o = f.serverError(fl, o)
	}
	return o
}

// answer decides per status code what becomes of the batch sent.
func (f *Forwarder) answer(fl *flight, r *reply) outcome {
	sent := fl.batch.Seqs
	why := fmt.Errorf("central answered %d: %s", r.status, reason(r.body))
	ra := retryAfter(r.header.Get("Retry-After"), time.Now())
	switch {
	case r.status == http.StatusOK:
		return f.applyResults(fl, r.body)
	case r.status == http.StatusRequestEntityTooLarge:
		return f.tooLarge(fl, why)
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return outcome{label: resultUnauthorized, err: why, status: r.status}
	case r.status == http.StatusTooManyRequests:
		return outcome{label: resultThrottled, err: why, retryAfter: max(ra, time.Second), status: r.status}
	case r.status >= 500, r.status == http.StatusRequestTimeout: // 408: the body came too slowly (a slow uplink)
		return outcome{label: resultRetry, err: fmt.Errorf("batch of %d: %w", len(sent), why), retryAfter: ra, status: r.status}
	default:
		// 400 (central could not read the batch's envelope: "scope":
		// "batch"), 415, 404 (wrong URL)…: no message was judged, so none
		// is blamed; the batch is kept and tried again slowly.
		return outcome{label: resultRefused, err: why, retryAfter: ra, status: r.status}
	}
}

// tooLarge halves the next batches; a single message central will not take
// goes to the dead letters, so it never blocks the queue.
func (f *Forwarder) tooLarge(fl *flight, why error) outcome {
	sent := fl.batch.Seqs
	if len(sent) > 1 {
		f.msgCap, f.okStreak = max(1, len(sent)/2), 0
		return outcome{label: resultSplit, err: why}
	}
	f.deadLetter(fl, []refusal{{seq: sent[0], code: outbox.DeadTooLarge, reason: outbox.ReasonTooLargePrefix + why.Error()}})
	return outcome{label: resultRejected}
}

// applyResults deletes what central stored and dead-letters what it
// refused; a message without a result stays for the next batch.
func (f *Forwarder) applyResults(fl *flight, body []byte) outcome {
	sent := fl.batch.Seqs
	p, err := matchResults(sent, body)
	if err != nil {
		return outcome{label: resultError, err: fmt.Errorf("central's answer to a batch of %d is unusable (all kept): %w", len(sent), err)}
	}
	f.queue.DeleteLater(p.ok...)
	f.forwarded.Add(int64(len(p.ok)))
	f.metrics.messages.WithLabelValues(resultOK).Add(float64(len(p.ok)))
	f.deadLetter(fl, p.rejected)
	if len(p.missing) > 0 || p.unexpected > 0 {
		f.log.Error("central's answer lacks results for some messages; keeping them to send again",
			"sent", len(sent), "missing", len(p.missing), "unexpected_results", p.unexpected)
		return outcome{label: resultRetry, err: fmt.Errorf("central answered %d of %d messages (%d unexpected results)",
			len(sent)-len(p.missing), len(sent), p.unexpected)}
	}
	if len(p.rejected) > 0 {
		return outcome{label: resultRejected}
	}
	return outcome{label: resultOK}
}

// deadLetter moves refused messages of fl aside, each with its reason.
// The first few of a batch are logged one by one, the rest counted.
func (f *Forwarder) deadLetter(fl *flight, rs []refusal) {
	const logEach = 5
	for i, r := range rs {
		f.queue.DeadLetterLater(r.seq, r.reason)
		f.metrics.messages.WithLabelValues(resultRejected).Inc()
		f.metrics.deadLettered.WithLabelValues(r.code).Inc()
		if i < logEach {
			child, kind := describe(fl.batch.JSON, r.seq)
			f.log.Warn("central refused a message for good; moved to the dead letters (hearthd deadletters list)",
				"seq", r.seq, "child", shortChild(child), "type", kind, "code", r.code, "reason", r.reason)
		}
	}
	if len(rs) > logEach {
		f.log.Warn("central refused more messages of the batch for good; moved to the dead letters",
			"more", len(rs)-logEach, "of_batch", len(fl.batch.Seqs))
	}
}

// settle counts an outcome, logs it and returns the pause before the next
// batch.
func (f *Forwarder) settle(o outcome) wait {
	f.metrics.batches.WithLabelValues(o.label).Inc()
	switch o.label {
	case resultOK, resultRejected:
		f.succeeded()
		return wait{}
	case resultSplit:
		f.log.Info("central refused a batch as too large; sending it in halves", "next_batch", f.msgCap, "reason", o.err)
		return wait{}
	case resultThrottled:
		// Pacing, not a failure: the backoff does not grow, the batch
		// waits what central asked (the messages pile up into larger
		// batches meanwhile), and nothing is reported as an error.
		f.log.Debug("central asks this home to slow down; waiting", "in", o.retryAfter, "reason", o.err)
		return wait{d: o.retryAfter + rand.N(o.retryAfter/10+1), state: StateBackoff}
	case resultUnauthorized:
		f.setError(o.err)
		f.log.Error("central refuses this edge's token; forwarding stopped, nothing dropped: fix central_token",
			"err", o.err, "retry_in", f.cfg.MaxBackoff)
		return wait{d: f.cfg.MaxBackoff, state: StateUnauthorized}
	case resultRefused:
		f.setError(o.err)
		if ok, held := f.warn.Allow(30 * time.Second); ok {
			f.log.Error("central refused a whole batch it could not read (a bug in this edge or a proxy between?); forwarding stopped, nothing dropped",
				"err", o.err, "retry_in", max(f.cfg.MaxBackoff, o.retryAfter), "similar_lines_held_back", held)
		}
		return wait{d: max(f.cfg.MaxBackoff, o.retryAfter), state: StateRefused}
	}
	return f.fail(o)
}

func (f *Forwarder) succeeded() {
	if f.failures > 0 {
		f.log.Info("central takes batches again", "after_failures", f.failures)
	}
	f.failures = 0
	f.clearError()
	f.metrics.lastSuccess.SetToCurrentTime()
	// The cap learnt from a 413 grows back slowly, in case central's limit was raised.
	if f.okStreak++; f.msgCap < f.cfg.BatchMessages && f.okStreak >= 16 {
		f.msgCap, f.okStreak = min(2*f.msgCap, f.cfg.BatchMessages), 0
	}
	if f.msgCap == f.cfg.BatchMessages && f.bisect.suspect == 0 {
		f.bisect.active = false
	}
}

// fail returns a backoff with full jitter, at least Retry-After, and logs
// (rate-limited) what happened and when the next try is.
func (f *Forwarder) fail(o outcome) wait {
	// Batches in flight together fail together when central is down: one
	// outage round counts once, or two in flight would double the backoff
	// twice per round.
	if !f.roundFailed {
		f.failures++
		f.roundFailed = true
	}
	d := max(fullJitter(f.cfg.BaseBackoff, f.cfg.MaxBackoff, f.failures), o.retryAfter)
	f.setError(o.err)
	if ok, held := f.warn.Allow(30 * time.Second); ok {
		lvl, msg := slog.LevelWarn, "send failed; keeping the batch and retrying"
		if o.label == resultError {
			lvl, msg = slog.LevelError, "central's answer or the outbox cannot be used; keeping the batch and retrying"
		}
		f.log.Log(context.Background(), lvl, msg, "err", o.err, "in", d.Round(time.Millisecond),
			"failures", f.failures, "similar_lines_held_back", held)
	}
	return wait{d: d, state: StateBackoff}
}

// fullJitter is a random wait in [0, min(max, base·2^(n-1))] ("full
// jitter"), so edges that failed together do not retry together.
func fullJitter(base, ceiling time.Duration, n int) time.Duration {
	c := ceiling
	if n <= 30 && base<<(n-1) < ceiling {
		c = base << (n - 1)
	}
	return rand.N(c + 1)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); 0
// when absent or unusable.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(h); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// do sends one request to central with the home's token.
func (f *Forwarder) do(ctx context.Context, method, path string, body []byte) (*reply, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(f.cfg.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+f.cfg.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
	}
	f.setEdgeHeaders(req.Header)
	sent := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	f.noteClock(sent, time.Now(), resp.Header.Get("Date"))
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// setEdgeHeaders names this edge and its backlog on every request, so
// central's console shows each edge's state, even one that only syncs
// its roster.
func (f *Forwarder) setEdgeHeaders(h http.Header) {
	st := f.queue.Stats()
	h.Set(hearth.HeaderEdgeID, f.cfg.EdgeID)
	h.Set(hearth.HeaderEdgeVersion, f.cfg.Version)
	h.Set(hearth.HeaderBacklogMessages, strconv.FormatInt(st.Depth, 10))
	h.Set(hearth.HeaderBacklogOldestSecs, strconv.FormatInt(int64(f.backlogAge(st)/time.Second), 10))
	h.Set(hearth.HeaderDeadLetters, strconv.FormatInt(st.DeadLetters, 10))
}

// backlogAge is the age of the oldest pending message, taken on the clock
// its receive time is on (central's for a synced message); 0 when empty.
func (f *Forwarder) backlogAge(st outbox.Stats) time.Duration {
	if st.Depth == 0 || st.OldestReceivedAt.IsZero() {
		return 0
	}
	now := time.Now()
	if st.OldestSynced {
		now, _ = f.clock.Now()
	}
	return max(now.Sub(st.OldestReceivedAt), 0)
}
