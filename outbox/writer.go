package outbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/guardianai/hearth"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bounds on one group commit, so that a flood of callers cannot build a
// transaction that outgrows a small router's memory.
const (
	maxBatchMessages = 8192
	maxBatchBytes    = 8 << 20
)

// appendFillPercent is how full bbolt packs a page before splitting it.
const appendFillPercent = 0.95

// errNothingToCommit rolls back a transaction that wrote nothing.
var errNothingToCommit = errors.New("nothing to commit")

// Bucket and key names.
var (
	bucketPending = []byte("pending")
	bucketDead    = []byte("dead")
	bucketMeta    = []byte("meta")
	keyFormat     = []byte("format")
	keyDepth      = []byte("depth")
	keyBytes      = []byte("bytes")
	keyDead       = []byte("dead")
)

type opKind uint8

const (
	opAppend opKind = iota
	opDelete
	opDeadLetter
	opCompact
	opFlush // commit the queued deletes (deferred.go)
)

// request is one caller's operation, handed to the writer goroutine.
type request struct {
	op    opKind
	ctx   context.Context
	buf   []byte   // encoded records (append)
	vals  [][]byte // one slice of buf per record (append)
	ends  []int    // end of each record in buf, while encoding
	bytes int64    // quota size of vals (append)
	// seqs: out for append (nil if not wanted), in for delete.
	seqs      []uint64
	dead      []deadItem // dead letter
	moved     int        // dead letter result
	ifWorth   bool       // compact only when worthwhile
	compacted bool       // compact result
	err       error
	done      chan struct{}
	callback  func(error) // answers an async append instead of done
}

type deadItem struct {
	key    []byte
	reason string
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

func newRequest(ctx context.Context, op opKind) *request {
	r := requestPool.Get().(*request)
	r.op, r.ctx = op, ctx
	return r
}

// release returns r to the pool; r must no longer be in the writer's hands.
func (r *request) release() {
	if cap(r.buf) > 1<<20 {
		return // let a huge buffer go rather than pin it
	}
	clear(r.vals)
	*r = request{buf: r.buf[:0], vals: r.vals[:0], ends: r.ends[:0], done: r.done}
	requestPool.Put(r)
}

// encode stores the records of msgs in r, outside the write transaction.
func (r *request) encode(msgs []hearth.Message) {
	r.buf = r.buf[:0]
	r.ends = r.ends[:0]
	for i := range msgs {
		r.buf = appendRecord(r.buf, &msgs[i])
		r.ends = append(r.ends, len(r.buf))
		r.bytes += int64(msgs[i].Size())
	}
	// Slices are cut once buf has stopped growing, so they stay valid.
	start := 0
	for _, end := range r.ends {
		r.vals = append(r.vals, r.buf[start:end:end])
		start = end
	}
}

// weight is what r adds to a group commit.
func (r *request) weight() (msgs, bytes int) {
	switch r.op {
	case opAppend:
		return len(r.vals), len(r.buf)
	case opDelete:
		return len(r.seqs), 0
	case opFlush:
		return 0, 0
	}
	return len(r.dead) + 1, 0
}

// finish answers the caller; the writer must not touch r afterwards.
func (r *request) finish(err error) {
	if cb := r.callback; cb != nil {
		r.release()
		cb(err)
		return
	}
	r.err = err
	r.done <- struct{}{}
}

// run is the writer goroutine: it takes whatever is queued, commits it in
// one transaction and answers each caller, until Close closes reqs.
func (o *Outbox) run() {
	defer close(o.done)
	var batch []*request
	for r := range o.reqs {
		batch = o.gather(append(batch[:0], r))
		o.execute(batch)
		clear(batch)
	}
	if o.deferred.len() > 0 {
		o.commit(nil) // Close: what is queued is committed, not lost
	}
}

// gather adds to batch what is already queued, lingering briefly under load.
func (o *Outbox) gather(batch []*request) []*request {
	msgs, bytes := batch[0].weight()
	for msgs < maxBatchMessages && bytes < maxBatchBytes {
		select {
		case r, ok := <-o.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			m, b := r.weight()
			msgs, bytes = msgs+m, bytes+b
		default:
			r, ok := o.linger(msgs)
			if !ok {
				return batch
			}
			batch = append(batch, r)
			m, b := r.weight()
			msgs, bytes = msgs+m, bytes+b
		}
	}
	return batch
}

// linger waits briefly for one more request when the group holds fewer
// messages than the last commit did: under load the phones whose acks just
// went out are about to send again, and one fsync for all of them costs
// less CPU than two (on small boxes the fsync's CPU is what runs out). It
// waits at most as long as the last commit took (measured: better than half
// of it at 10 and 50 phones, the same at 200), and never when the last
// commit held a single message, so a lone phone pays no delay.
func (o *Outbox) linger(msgs int) (*request, bool) {
	if o.lastBatch <= 1 || msgs >= o.lastBatch {
		return nil, false
	}
	wait := min(o.lastCommit, maxLinger)
	if o.lingerTimer == nil {
		o.lingerTimer = time.NewTimer(wait)
	} else {
		o.lingerTimer.Reset(wait)
	}
	select {
	case r, ok := <-o.reqs:
		o.lingerTimer.Stop()
		return r, ok
	case <-o.lingerTimer.C:
		return nil, false
	}
}

// maxLinger bounds linger whatever the last commit took.
const maxLinger = time.Millisecond

// execute commits batch in order; a compaction splits it in two commits.
func (o *Outbox) execute(batch []*request) {
	for len(batch) > 0 {
		i := slices.IndexFunc(batch, func(r *request) bool { return r.op == opCompact })
		if i < 0 {
			o.commit(batch)
			return
		}
		if i > 0 {
			o.commit(batch[:i])
		}
		c := batch[i]
		c.compacted, c.err = o.compact(c.ifWorth)
		c.finish(c.err)
		batch = batch[i+1:]
	}
}

// commit applies batch in one transaction. A request refused on its own
// (quota, cancelled) does not fail the others; a failed commit fails all.
func (o *Outbox) commit(batch []*request) {
	start := time.Now()
	st := o.state
	o.later = o.deferred.take(o.later[:0])
	var written int64
	err := guard(func() error {
		return o.db.Update(func(tx *bolt.Tx) error {
			o.hwm = tx.Size() // as the previous commit left it
			if err := o.apply(tx, &st, batch); err != nil {
				return err
			}
			// Counted before the commit writes: it allocates the pages
			// it writes (spill, freelist) in OnCommit's stead; see written.
			o.lastTx = tx
			return nil
		})
	})
	committed := err == nil
	if committed {
		written = writtenBytes(o.lastTx, o.db.Info().PageSize)
	}
	o.lastTx = nil
	switch {
	case committed:
		o.state = st
		o.commits++
		o.metrics.writtenBytes.Add(float64(written))
		if len(o.later) > 0 {
			// Under mu, so that no read that began before this commit
			// (and still sees the records) misses them in the queue.
			o.mu.Lock()
			o.deferred.done(o.later)
			o.mu.Unlock()
		}
		o.publish()
		o.lastCommit = time.Since(start)
		o.metrics.commitSeconds.Observe(o.lastCommit.Seconds())
	case errors.Is(err, errNothingToCommit):
		err = nil
	default:
		err = o.commitFailed(err)
	}
	msgs := 0
	for _, r := range batch {
		if r.err == nil {
			r.err = err
		}
		if r.op == opAppend && r.err == nil {
			msgs += len(r.vals)
		}
		if errors.Is(r.err, hearth.ErrFull) {
			o.metrics.refusedFull.Inc()
		}
	}
	// Metrics first: a caller woken by finish may read them at once.
	if committed {
		o.lastBatch = msgs
		o.metrics.commitBatch.Observe(float64(msgs))
		if msgs > 0 {
			select { // wake the reader: there is something to forward
			case o.wake <- struct{}{}:
			default: // it has a wake-up pending already
			}
		}
	}
	for _, r := range batch {
		r.finish(r.err)
	}
}

// commitFailed logs a failed commit and turns it into what callers act on.
func (o *Outbox) commitFailed(err error) error {
	if errors.Is(err, errCorrupt) {
		o.suspect(err)
	} else {
		o.log.Warn("outbox commit failed; the batch is refused and callers retry", "err", err)
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, berrors.ErrMaxSizeReached) {
		return fmt.Errorf("commit outbox batch: %w (%w)", hearth.ErrFull, err)
	}
	return fmt.Errorf("commit outbox batch: %w (%w)", hearth.ErrUnavailable, err)
}

// apply runs batch inside tx, updating st. Only storage failures are
// returned; a refusal of one request is left in its err.
func (o *Outbox) apply(tx *bolt.Tx, st *state, batch []*request) error {
	t := txn{pending: tx.Bucket(bucketPending), dead: tx.Bucket(bucketDead), st: st, now: o.opts.Now()}
	if t.pending == nil || t.dead == nil {
		return fmt.Errorf("%w: outbox buckets missing", errCorrupt)
	}
	// Keys only ever grow: full pages instead of bbolt's default half-full
	// split halve the file and the bytes written per commit.
	t.pending.FillPercent, t.dead.FillPercent = appendFillPercent, appendFillPercent
	// Queued deletes first, so that the appends below find their room.
	if err := t.applyDeferred(o.later); err != nil {
		return err
	}
	for _, r := range batch {
		r.err = nil
		if err := r.ctx.Err(); err != nil {
			r.err = err // nobody waits for it any more
			continue
		}
		var err error
		switch r.op {
		case opAppend:
			r.err, err = t.append(r, o.opts)
		case opDelete:
			err = t.delete(r.seqs)
		case opDeadLetter:
			r.moved, r.err, err = t.deadLetter(r.dead)
		case opFlush:
		default:
			panic(fmt.Sprintf("BUG: outbox request op %d in a commit", r.op))
		}
		if err != nil {
			return err
		}
	}
	if !t.changed {
		return errNothingToCommit // all refused or no-ops: spare the fsync
	}
	if t.headMoved {
		st.oldest, st.oldestSynced = headTime(t.pending)
	}
	st.heal()
	var err error
	o.metaBuf, err = st.put(tx.Bucket(bucketMeta), o.metaBuf[:0])
	return err
}

// txn is the state of one write transaction.
type txn struct {
	pending, dead *bolt.Bucket
	st            *state
	now           time.Time
	changed       bool // something was written
	headMoved     bool // the oldest pending record may have changed
}

func (t *txn) append(r *request, opts Options) (refused, err error) {
	n := int64(len(r.vals))
	if opts.MaxMessages > 0 && t.st.depth+n > opts.MaxMessages || opts.MaxBytes > 0 && t.st.bytes+r.bytes > opts.MaxBytes {
		return fmt.Errorf("outbox holds %d of %d messages, %d of %d bytes; %d messages of %d bytes do not fit: %w",
			t.st.depth, opts.MaxMessages, t.st.bytes, opts.MaxBytes, n, r.bytes, hearth.ErrFull), nil
	}
	if t.st.depth == 0 {
		t.headMoved = true
	}
	var k [8]byte // Put copies keys; values must stay valid until commit, as r.buf does
	for _, v := range r.vals {
		seq, err := t.pending.NextSequence()
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint64(k[:], seq)
		if err := t.pending.Put(k[:], v); err != nil {
			return nil, err
		}
		if r.seqs != nil {
			r.seqs = append(r.seqs, seq)
		}
	}
	t.st.depth += n
	t.st.bytes += r.bytes
	t.changed = true
	return nil, nil
}

func (t *txn) delete(seqs []uint64) error {
	var k [8]byte
	for _, seq := range seqs {
		binary.BigEndian.PutUint64(k[:], seq)
		v := t.pending.Get(k[:])
		if v == nil {
			continue
		}
		size := recordSize(v)
		if err := t.pending.Delete(k[:]); err != nil {
			return err
		}
		t.st.depth--
		t.st.bytes -= size
		t.changed, t.headMoved = true, true
	}
	return nil
}

func (t *txn) deadLetter(items []deadItem) (moved int, refused, err error) {
	for _, it := range items {
		v := t.pending.Get(it.key)
		if v == nil {
			if t.dead.Get(it.key) == nil {
				refused = fmt.Errorf("dead-letter %d: %w", keySeq(it.key), ErrNotFound)
			}
			continue
		}
		size := recordSize(v)
		if err := t.dead.Put(it.key, appendDead(nil, t.now, it.reason, v)); err != nil {
			return 0, nil, err
		}
		if err := t.pending.Delete(it.key); err != nil {
			return 0, nil, err
		}
		t.st.depth--
		t.st.bytes -= size
		t.st.dead++
		t.changed, t.headMoved = true, true
		moved++
	}
	return moved, refused, nil
}

// headTime is the receive time of the oldest pending record and whether
// it is on central's clock; zero when there is none or it does not decode.
func headTime(pending *bolt.Bucket) (time.Time, bool) {
	_, v := pending.Cursor().First()
	if v == nil {
		return time.Time{}, false
	}
	r, err := parseRecord(v)
	if err != nil {
		return time.Time{}, false
	}
	return r.receivedAt, r.synced
}

// statEvery is how often publish looks at the file's size: a stat per
// commit would cost a system call per message at household pace. It also
// looks when the pages reach past the size it knows (the file grew), and
// after a compaction.
const statEvery = time.Second

// publish copies the writer's counters to what Stats returns.
func (o *Outbox) publish() {
	if now := time.Now(); now.Sub(o.statAt) >= statEvery || o.hwm > o.fileBytes {
		if fi, err := os.Stat(o.path); err == nil {
			o.fileBytes, o.statAt = fi.Size(), now
		}
	}
	size := o.fileBytes
	o.statsMu.Lock()
	o.stats = Stats{
		Depth:            o.state.depth,
		Bytes:            o.state.bytes,
		OldestReceivedAt: o.state.oldest,
		OldestSynced:     o.state.oldestSynced,
		DeadLetters:      o.state.dead,
		FileBytes:        size,
		Commits:          o.commits,
	}
	o.statsMu.Unlock()
}

// writtenBytes is what a committed transaction handed the disk: the pages
// it allocated (each dirty page, the branches above, the freelist when it
// is synced), all written at commit, and the meta page. bbolt's TxStats
// count page allocations in bytes but writes only in calls.
func writtenBytes(tx *bolt.Tx, pageSize int) int64 {
	if tx == nil {
		return 0
	}
	st := tx.Stats()
	return st.GetPageAlloc() + int64(pageSize)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// keySeq is the sequence number of a key; 0 for a key of the wrong length.
func keySeq(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}
