package outbox

import (
	"context"
	"encoding/binary"
	"sync"
	"time"
)

// A delete need not be durable at once: if it is lost in a crash, the
// message is sent again and central's upserts absorb it. So DeleteLater and
// DeadLetterLater only queue their work, and the writer commits it with the
// next append (sharing that commit's pages and fsyncs), or after
// Options.SettleDelay when no append comes. Until then every read skips the
// queued messages, so they are never sent again by this process.

// defaultSettleDelay is how long queued deletes wait for an append.
const defaultSettleDelay = 5 * time.Second

// deferred is the queue of deletes and dead-letter moves not yet committed.
type deferred struct {
	mu    sync.Mutex
	items map[uint64]string // seq -> "" for a delete, the reason for a dead letter
	dead  int               // items with a reason
	timer *time.Timer       // pending flush, nil when none
}

// has reports whether seq's delete or move is queued.
func (d *deferred) has(seq uint64) bool {
	d.mu.Lock()
	_, ok := d.items[seq]
	d.mu.Unlock()
	return ok
}

func (d *deferred) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.items)
}

// add queues seq with reason ("" for a delete) and reports whether a flush
// must be scheduled.
func (d *deferred) add(seq uint64, reason string) {
	if d.items == nil {
		d.items = make(map[uint64]string)
	}
	if old, ok := d.items[seq]; ok && old != "" {
		return // a dead-letter move stays one
	}
	if reason != "" {
		d.dead++
	}
	d.items[seq] = reason
}

// take returns what is queued, oldest seq first order not guaranteed; the
// items stay queued (and skipped by reads) until done removes them.
func (d *deferred) take(dst []deferredItem) []deferredItem {
	d.mu.Lock()
	defer d.mu.Unlock()
	for seq, reason := range d.items {
		dst = append(dst, deferredItem{seq: seq, reason: reason})
	}
	if d.timer != nil && len(dst) > 0 {
		d.timer.Stop()
		d.timer = nil
	}
	return dst
}

// done removes items a commit has made durable.
func (d *deferred) done(items []deferredItem) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, it := range items {
		if r, ok := d.items[it.seq]; ok && r == it.reason {
			delete(d.items, it.seq)
			if r != "" {
				d.dead--
			}
		}
	}
}

type deferredItem struct {
	seq    uint64
	reason string
}

// DeleteLater queues the deletes of pending messages: they are committed
// with the next append, or after Options.SettleDelay, and skipped by every
// read meanwhile. A crash before that commit loses them: the messages are
// then sent again (at-least-once). Close commits what is queued.
func (o *Outbox) DeleteLater(seqs ...uint64) {
	o.queueLater(seqs, "")
}

// DeadLetterLater queues the move of pending message seq to the dead
// letters with reason, as DeleteLater queues a delete. A seq that is not
// pending when the move is committed is ignored.
// The reason's start gives its code (DeadCode, DeadReason). Past
// Options.DeadMaxMessages the oldest dead letters are purged.
func (o *Outbox) DeadLetterLater(seq uint64, reason string) {
	if reason == "" {
		reason = "no reason given"
	}
	o.queueLater([]uint64{seq}, reason)
}

func (o *Outbox) queueLater(seqs []uint64, reason string) {
	if len(seqs) == 0 {
		return
	}
	d := &o.deferred
	d.mu.Lock()
	for _, seq := range seqs {
		d.add(seq, reason)
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(o.opts.SettleDelay, o.flushDeferred)
	}
	d.mu.Unlock()
}

// flushDeferred asks the writer for a commit of what is queued; a full or
// closed writer queue is fine: an append commit or Close takes them.
func (o *Outbox) flushDeferred() {
	o.deferred.mu.Lock()
	o.deferred.timer = nil
	o.deferred.mu.Unlock()
	r := newRequest(context.Background(), opFlush)
	r.callback = func(error) {}
	o.closeMu.RLock()
	defer o.closeMu.RUnlock()
	if o.closed {
		r.release()
		return
	}
	select {
	case o.reqs <- r:
	default:
		r.release() // the writer is busy: its next commit carries them
	}
}

// applyDeferred applies the queued deletes and moves inside a commit.
func (t *txn) applyDeferred(items []deferredItem) error {
	var k [8]byte
	for _, it := range items {
		binary.BigEndian.PutUint64(k[:], it.seq)
		if it.reason == "" {
			if err := t.delete([]uint64{it.seq}); err != nil {
				return err
			}
			continue
		}
		if _, _, err := t.deadLetter([]deadItem{{key: k[:], reason: it.reason}}); err != nil {
			return err
		}
	}
	return t.trimDeadLogged()
}
