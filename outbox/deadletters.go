package outbox

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/guardianai/hearth"
	bolt "go.etcd.io/bbolt"
)

// Dead letters are kept so that an operator (hearthd deadletters) or the
// household (its page's retry button) can act on them: list them by reason
// code, child and age, put them back in the queue (Retry: a new seq, the
// original received_at) or purge them. They count against the quota like
// pending messages, are capped by Options.DeadMaxMessages (the oldest go
// first) and purged once older than Options.DeadRetention.

// Reason codes of dead letters, derived from the stored reason text (the
// stored form has no field of its own for them, so files stay readable by
// the previous release). Central's rejection codes (unknown_child,
// foreign_child, invalid, too_old, future, unknown_type) come through as
// central sent them.
const (
	DeadRejected    = "rejected"    // central rejected it and gave no code
	DeadTooLarge    = "too_large"   // central refused it alone as too large (413)
	DeadPoison      = "poison"      // central failed (5xx) on it alone while its neighbours were stored
	DeadUndecodable = "undecodable" // the stored record cannot be read
	DeadOther       = "other"
)

// Reasons the edge writes; DeadReason builds a rejection's.
const (
	ReasonTooLargePrefix = "too large for central: "
	ReasonPoisonPrefix   = "central fails on this message alone: "
	reasonRejectedPrefix = "rejected by central"
)

// DeadReason is the stored reason of a message central rejected with code
// (may be empty: an older central) and text.
func DeadReason(code, text string) string {
	if code == "" {
		return reasonRejectedPrefix + ": " + text
	}
	return reasonRejectedPrefix + " (" + code + "): " + text
}

var codeInReason = regexp.MustCompile(`^rejected by central \(([a-z_]{1,32})\): `)

// DeadCode is the reason code of a stored reason.
func DeadCode(reason string) string {
	switch {
	case strings.HasPrefix(reason, ReasonTooLargePrefix):
		return DeadTooLarge
	case strings.HasPrefix(reason, ReasonPoisonPrefix):
		return DeadPoison
	case strings.HasPrefix(reason, errBadRecord.Error()):
		return DeadUndecodable
	}
	if m := codeInReason.FindStringSubmatch(reason); m != nil {
		return m[1]
	}
	if text, ok := strings.CutPrefix(reason, reasonRejectedPrefix+": "); ok {
		return legacyCode(text)
	}
	return DeadOther
}

// legacyCode reads the code of a rejection an older central sent
// without one, from its text (docs/edge-api.md lists them).
func legacyCode(text string) string {
	switch {
	case text == "unknown child":
		return "unknown_child"
	case text == "child does not belong to this home":
		return "foreign_child"
	case strings.Contains(text, "older than the retention"), strings.Contains(text, "is before 2000"):
		return hearth.CodeTooOld
	case strings.Contains(text, "in the future"), strings.Contains(text, "not before 2100"):
		return hearth.CodeFuture
	case strings.Contains(text, "unknown message type"):
		return hearth.CodeUnknownType
	}
	return DeadRejected
}

// DeadFilter selects dead letters; the zero value selects all of them.
type DeadFilter struct {
	Code  string    // reason code ("" any)
	Child string    // child hash or its start ("" any)
	Until time.Time // received at or before (zero: any age)
	Limit int       // at most this many, oldest first (0: no limit)
}

// Empty reports whether f selects every dead letter.
func (f DeadFilter) Empty() bool { return f.Code == "" && f.Child == "" && f.Until.IsZero() }

func (f DeadFilter) match(d *DeadLetter) bool {
	if f.Code != "" && d.Code != f.Code {
		return false
	}
	if f.Child != "" && !strings.HasPrefix(d.Msg.ChildHash, f.Child) {
		return false
	}
	return f.Until.IsZero() || !d.received().After(f.Until)
}

// received is when the message was received, or for an undecodable one
// when it was moved.
func (d *DeadLetter) received() time.Time {
	if d.Raw != nil || d.Msg.ReceivedAt.IsZero() {
		return d.At
	}
	return d.Msg.ReceivedAt
}

// ListDeadLetters returns the dead letters f selects, oldest first.
func (o *Outbox) ListDeadLetters(f DeadFilter) ([]DeadLetter, error) {
	var out []DeadLetter
	err := o.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.First(); k != nil && (f.Limit <= 0 || len(out) < f.Limit); k, v = c.Next() {
			d := readDead(k, v)
			if f.match(&d) {
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}

// DeadCounts returns the number of dead letters per reason code.
func (o *Outbox) DeadCounts() (map[string]int64, error) {
	counts := make(map[string]int64)
	err := o.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			counts[DeadCode(deadReasonOf(v))]++
			return nil
		})
	})
	return counts, err
}

func readDead(k, v []byte) DeadLetter {
	d, err := decodeDead(keySeq(k), v)
	if err != nil {
		d = DeadLetter{Seq: keySeq(k), Reason: err.Error(), Raw: append([]byte(nil), v...)}
	}
	d.Code = DeadCode(d.Reason)
	d.Size = int64(len(v))
	if d.Raw == nil {
		d.Size = int64(d.Msg.Size())
	}
	return d
}

// deadReasonOf reads only the reason of a stored dead letter.
func deadReasonOf(v []byte) string {
	if len(v) == 0 || v[0] != deadV1 {
		return errBadRecord.Error()
	}
	p := parser{b: v[1:]}
	p.time()
	r := p.bytes()
	if p.err != nil {
		return errBadRecord.Error()
	}
	return string(r)
}

// ErrRetryFull is why Retry put back fewer dead letters than selected:
// the quota has no room for them in the queue (it was lowered since they
// were moved aside; otherwise a retry never changes what the quota holds).
var ErrRetryFull = fmt.Errorf("the outbox quota has no room for them: %w", hearth.ErrFull)

// RetryResult is what Retry did.
type RetryResult struct {
	Retried int // put back in the queue with a new seq
	Skipped int // undecodable: cannot be sent, left in place
}

// RetryDeadLetters puts the dead letters f selects back at the end of the
// queue, oldest first, each with a new seq and its original received_at,
// in one commit. It stops, with an error wrapping ErrRetryFull, at the
// first that the quota has no room for.
func (o *Outbox) RetryDeadLetters(ctx context.Context, f DeadFilter) (RetryResult, error) {
	var res RetryResult
	err := o.inTxn(ctx, func(t *txn) error {
		res = RetryResult{}
		return t.eachDead(f, func(k, v []byte, d *DeadLetter) (bool, error) {
			if d.Raw != nil {
				res.Skipped++
				return true, nil
			}
			rec := v[len(v)-len(recordOf(v)):]
			size := recordSize(rec)
			if o.opts.MaxMessages > 0 && t.st.depth+t.st.dead > o.opts.MaxMessages ||
				o.opts.MaxBytes > 0 && t.st.bytes+t.st.deadBytes > o.opts.MaxBytes {
				return false, ErrRetryFull
			}
			seq, err := t.pending.NextSequence()
			if err != nil {
				return false, err
			}
			if t.st.depth == 0 {
				t.headMoved = true
			}
			if err := t.pending.Put(seqKey(seq), rec); err != nil {
				return false, err
			}
			if err := t.dead.Delete(k); err != nil {
				return false, err
			}
			t.st.depth++
			t.st.bytes += size
			t.st.dead--
			t.st.deadBytes -= size
			t.changed = true
			res.Retried++
			return true, nil
		})
	})
	if res.Retried > 0 && (err == nil || errors.Is(err, ErrRetryFull)) {
		o.metrics.deadRetried.Add(float64(res.Retried))
		select { // wake the forwarder: there is something to send
		case o.wake <- struct{}{}:
		default:
		}
	}
	return res, err
}

// Purge reasons, the labels of hearth_outbox_dead_purged_total.
const (
	PurgeOperator  = "operator"  // hearthd deadletters purge
	PurgeCap       = "cap"       // beyond Options.DeadMaxMessages
	PurgeRetention = "retention" // older than Options.DeadRetention
)

// PurgeDeadLetters deletes the dead letters f selects and returns how
// many; an empty filter is refused unless all is set, so that a purge
// never takes everything by a missing argument.
func (o *Outbox) PurgeDeadLetters(ctx context.Context, f DeadFilter, all bool) (int, error) {
	if f.Empty() && !all {
		return 0, ErrPurgeNeedsFilter
	}
	return o.purge(ctx, f, PurgeOperator)
}

// ErrPurgeNeedsFilter refuses a purge with no filter and no "all".
var ErrPurgeNeedsFilter = errors.New("purge needs a filter (reason code, child or age) or all")

func (o *Outbox) purge(ctx context.Context, f DeadFilter, why string) (int, error) {
	n := 0
	err := o.inTxn(ctx, func(t *txn) error {
		n = 0
		return t.eachDead(f, func(k, v []byte, _ *DeadLetter) (bool, error) {
			n++
			return true, t.dropDead(k, v)
		})
	})
	if n > 0 && err == nil {
		o.metrics.deadPurged.WithLabelValues(why).Add(float64(n))
	}
	return n, err
}

// PurgeExpiredDeadLetters purges the dead letters received before
// Options.DeadRetention ago (none when it is 0), and the oldest beyond
// Options.DeadMaxMessages that a move past the cap left.
func (o *Outbox) PurgeExpiredDeadLetters(ctx context.Context) (int, error) {
	n := 0
	if o.opts.DeadRetention > 0 {
		k, err := o.purge(ctx, DeadFilter{Until: o.opts.Now().Add(-o.opts.DeadRetention)}, PurgeRetention)
		if err != nil {
			return k, err
		}
		n += k
	}
	err := o.inTxn(ctx, func(t *txn) error { return t.trimDeadLogged() })
	return n, err
}

// eachDead calls fn for each dead letter f selects, oldest first, until
// fn says stop. Deleting the current key inside fn is allowed.
func (t *txn) eachDead(f DeadFilter, fn func(k, v []byte, d *DeadLetter) (bool, error)) error {
	var keys [][]byte
	c := t.dead.Cursor()
	for k, v := c.First(); k != nil && (f.Limit <= 0 || len(keys) < f.Limit); k, v = c.Next() {
		if d := readDead(k, v); f.match(&d) {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	for _, k := range keys {
		v := t.dead.Get(k)
		d := readDead(k, v)
		more, err := fn(k, v, &d)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// dropDead deletes one dead letter and its part of the counters.
func (t *txn) dropDead(k, v []byte) error {
	size := recordSize(recordOf(v))
	if err := t.dead.Delete(k); err != nil {
		return err
	}
	t.st.dead--
	t.st.deadBytes -= size
	t.changed = true
	return nil
}

// trimDead drops the oldest dead letters beyond the cap.
func (t *txn) trimDead() (int, error) {
	if t.opts.DeadMaxMessages <= 0 || t.st.dead <= t.opts.DeadMaxMessages {
		return 0, nil
	}
	n := 0
	c := t.dead.Cursor()
	for k, v := c.First(); k != nil && t.st.dead > t.opts.DeadMaxMessages; k, v = c.First() {
		if err := t.dropDead(append([]byte(nil), k...), v); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// trimDeadLogged trims the dead letters to their cap inside a commit,
// and says so.
func (t *txn) trimDeadLogged() error {
	n, err := t.trimDead()
	if n > 0 && err == nil && t.o != nil {
		t.o.metrics.deadPurged.WithLabelValues(PurgeCap).Add(float64(n))
		t.o.log.Warn("dead letters over their cap; purged the oldest", "purged", n, "cap", t.opts.DeadMaxMessages)
	}
	return err
}

// recordOf is the pending record inside a stored dead letter (the whole
// value when its header does not parse).
func recordOf(v []byte) []byte {
	if len(v) == 0 || v[0] != deadV1 {
		return v
	}
	p := parser{b: v[1:]}
	p.time()
	p.bytes()
	if p.err != nil {
		return v
	}
	return p.b
}

// inTxn runs fn in a commit of the writer, as a request of its own.
func (o *Outbox) inTxn(ctx context.Context, fn func(t *txn) error) error {
	r := newRequest(ctx, opTxn)
	r.txnFn = fn
	owned, err := o.submit(ctx, r)
	if owned {
		r.release()
	}
	return err
}

// runTxnFn runs an opTxn request: a refusal (the quota) is the request's
// own error and keeps what fn did before it; any other error is the
// storage's and fails the commit.
func runTxnFn(t *txn, r *request) (refused, err error) {
	err = r.txnFn(t)
	if errors.Is(err, hearth.ErrFull) {
		return err, nil
	}
	return nil, err
}
