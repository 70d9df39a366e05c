// Package outbox is the edge's durable queue on bbolt: the daemon acks a
// phone's message only once it is fsynced here, and the forwarder drains it.
//
// All writes go through one writer goroutine that commits everything pending
// in a single transaction (group commit), so one caller waits about one
// fsync and many callers share each fsync.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/guardianai/hearth"
	bolt "go.etcd.io/bbolt"
)

// FormatVersion is the version of the file layout this build writes. Files
// of an older version are migrated on Open; newer ones are refused.
//
// Format 3 stores records of version 3, each holding the message as the
// JSON it has in a batch (see record.go). Format 2 stored records of
// version 2 (with flags: Synced), format 1 of version 1; this build still
// reads both, so migrating such a file only rewrites the format number and
// its old records are encoded for central when they are forwarded.
const FormatVersion = 3

// ErrNewerFormat is returned by Open for a file written by a newer build.
// The file is left untouched: run the newer build, or move the file away.
var ErrNewerFormat = errors.New("outbox file has a newer format than this build reads")

// ErrLocked is returned by Open when another process holds the file's lock
// for longer than Options.OpenTimeout. It is never treated as corruption.
var ErrLocked = errors.New("outbox file is locked by another process")

// ErrClosed is returned by every call after Close. It wraps
// hearth.ErrUnavailable, so a phone is told to retry later.
var ErrClosed = fmt.Errorf("outbox closed: %w", hearth.ErrUnavailable)

// ErrBusy means the writer's queue is full: StoreAsync refuses at once
// instead of making a phone's session wait; the phone resends later.
var ErrBusy = fmt.Errorf("outbox busy: %w", hearth.ErrUnavailable)

// ErrNotFound is returned by DeadLetter for a sequence number that is
// neither pending nor dead-lettered.
var ErrNotFound = errors.New("no such message in the outbox")

// Options configures an Outbox. The zero value is usable.
type Options struct {
	// MaxBytes bounds the sum of hearth.Message.Size of pending messages;
	// 0 means unlimited.
	MaxBytes int64
	// MaxMessages bounds the number of pending messages; 0 means unlimited.
	MaxMessages int64
	// Logger receives what the outbox has to say; nil means slog.Default().
	Logger *slog.Logger
	// OpenTimeout is how long Open waits for the file lock; 0 means 1s.
	OpenTimeout time.Duration
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// CheckMaxBytes bounds the file size up to which Open runs the full
	// check (a walk of the page tree, then bbolt's tx.Check; both read
	// every page: ~60 ms for 85 MB from page cache); 0 means 64 MiB,
	// negative never. Larger files get the cheap checks only, and a full
	// check on the next Open after a read or write hit a corrupt page.
	CheckMaxBytes int64
	// SettleDelay is how long queued deletes (DeleteLater) wait for an
	// append to be committed with; 0 means 5s.
	SettleDelay time.Duration
}

const defaultCheckMaxBytes = 64 << 20

func (opts Options) withDefaults() Options {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SettleDelay <= 0 {
		opts.SettleDelay = defaultSettleDelay
	}
	if opts.CheckMaxBytes == 0 {
		opts.CheckMaxBytes = defaultCheckMaxBytes
	}
	return opts
}

// Outbox is a durable FIFO of messages. It is safe for concurrent use.
type Outbox struct {
	path    string
	opts    Options
	log     *slog.Logger
	metrics *metrics

	// mu guards db against the swap in Compact and the nil set by Close:
	// readers hold it shared. The writer goroutine, which does all writes
	// and the swap, reads db without it.
	mu sync.RWMutex
	db *bolt.DB

	// closeMu orders sends on reqs against Close closing it.
	closeMu sync.RWMutex
	closed  bool
	reqs    chan *request
	done    chan struct{} // closed when the writer goroutine has exited
	wake    chan struct{} // one token after a commit that appended

	// Owned by the writer goroutine.
	state   state
	commits uint64
	metaBuf []byte         // values of the meta bucket; bbolt keeps them until commit
	later   []deferredItem // the queued deletes the current commit applies
	lastTx  *bolt.Tx       // the current commit's transaction, for its stats
	// The file's size and when it was last looked at.
	fileBytes int64
	statAt    time.Time
	hwm       int64 // bytes the pages reach, as of the last commit's start

	deferred deferred
	// What the last commit held and took, for linger.
	lastBatch   int
	lastCommit  time.Duration
	lingerTimer *time.Timer

	statsMu sync.Mutex
	stats   Stats

	suspectOnce sync.Once
}

// Record is one pending message and its sequence number.
type Record struct {
	Seq uint64
	Msg hearth.Message
}

// DeadLetter is a message taken out of the queue for good, with the reason.
type DeadLetter struct {
	Seq    uint64
	Msg    hearth.Message
	Reason string
	At     time.Time
	// Raw holds the stored record when it could not be decoded (Msg is
	// then zero), so that nothing is lost.
	Raw []byte
}

// Stats describes the outbox after the latest commit.
type Stats struct {
	Depth            int64     // pending messages
	Bytes            int64     // sum of their hearth.Message.Size
	OldestReceivedAt time.Time // of the oldest pending message; zero if empty
	DeadLetters      int64
	FileBytes        int64 // size of the database file
	Commits          uint64
	// OldestSynced tells that OldestReceivedAt is on central's clock
	// (hearth.Message.Synced), so its age must be taken on that clock too.
	OldestSynced bool
}

// Open opens or creates the outbox file at path. A file that is corrupt is
// moved aside to "<path>.corrupt-<UTC time>", logged at ERROR, and replaced
// by an empty outbox, so that a bad file never becomes a crash loop. A file
// locked by another process yields ErrLocked; a newer format ErrNewerFormat.
func Open(path string, opts Options) (*Outbox, error) {
	opts = opts.withDefaults()
	o := &Outbox{
		path:    path,
		opts:    opts,
		log:     opts.Logger.With("outbox", path),
		metrics: newMetrics(),
		reqs:    make(chan *request, 1024),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	db, st, err := o.openOrRecover()
	if err != nil {
		return nil, err
	}
	o.db, o.state = db, st
	o.publish()
	go o.run()
	return o, nil
}

// Appended delivers a token after a commit that appended messages, so that
// the reader (the forwarder) waits for data instead of polling for it.
// One token stands for any number of commits since it was last taken.
func (o *Outbox) Appended() <-chan struct{} { return o.wake }

// Path returns the path of the database file.
func (o *Outbox) Path() string { return o.path }

// Append makes msgs durable: it returns their sequence numbers once the
// transaction holding them has been committed and fsynced. It returns an
// error wrapping hearth.ErrFull, storing none of msgs, when they would
// exceed a quota, and ErrClosed after Close. When ctx ends while the batch
// is queued, Append returns ctx.Err() and the batch may still be stored.
func (o *Outbox) Append(ctx context.Context, msgs []hearth.Message) ([]uint64, error) {
	return o.append(ctx, msgs, true)
}

// Store is Append without the sequence numbers, for callers that wait.
func (o *Outbox) Store(ctx context.Context, msgs []hearth.Message) error {
	_, err := o.append(ctx, msgs, false)
	return err
}

// StoreAsync implements ingest.Sink: it queues msgs for the next group
// commit and returns at once; done is called once with Append's error (nil
// when the messages are durable), on the writer goroutine, so it must not
// block. Saving the caller a goroutine per message matters at 50k msgs/s.
// It never waits: with the writer's queue full it answers ErrBusy at once.
func (o *Outbox) StoreAsync(msgs []hearth.Message, done func(error)) {
	if len(msgs) == 0 {
		done(nil)
		return
	}
	r := newRequest(context.Background(), opAppend)
	r.encode(msgs)
	r.callback = done
	o.closeMu.RLock()
	if o.closed {
		o.closeMu.RUnlock()
		o.metrics.refusedClosed.Inc()
		r.release()
		done(ErrClosed)
		return
	}
	select {
	case o.reqs <- r:
		o.closeMu.RUnlock()
	default:
		o.closeMu.RUnlock()
		o.metrics.refusedBusy.Inc()
		r.release()
		done(ErrBusy)
	}
}

func (o *Outbox) append(ctx context.Context, msgs []hearth.Message, wantSeqs bool) ([]uint64, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	r := newRequest(ctx, opAppend)
	r.encode(msgs)
	if wantSeqs {
		r.seqs = make([]uint64, 0, len(msgs))
	}
	owned, err := o.submit(ctx, r)
	if !owned {
		return nil, err // the writer still holds r
	}
	seqs := r.seqs
	r.release()
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

// Delete removes the given pending messages in one commit. Sequence numbers
// that are not pending are ignored, so a retried Delete is harmless.
func (o *Outbox) Delete(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	r := newRequest(context.Background(), opDelete)
	r.seqs = seqs // only read, and only until submit returns
	_, err := o.submit(context.Background(), r)
	r.release()
	return err
}

// DeadLetter moves pending message seq to the dead letters with reason and
// the current time. Moving it again is harmless; a seq that is neither
// pending nor dead yields ErrNotFound.
func (o *Outbox) DeadLetter(seq uint64, reason string) error {
	_, err := o.deadLetter([]deadItem{{key: seqKey(seq), reason: reason}})
	return err
}

// deadLetter moves items in one commit and returns how many it moved.
func (o *Outbox) deadLetter(items []deadItem) (int, error) {
	r := newRequest(context.Background(), opDeadLetter)
	r.dead = items
	_, err := o.submit(context.Background(), r)
	moved := r.moved
	r.release()
	return moved, err
}

// Stats returns the counters of the latest commit. It takes no transaction
// and is safe to call often and concurrently. Depth leaves out the messages
// whose delete is queued (DeleteLater); Bytes and OldestReceivedAt still
// count them until the delete is committed.
func (o *Outbox) Stats() Stats {
	queued := int64(o.deferred.len())
	o.statsMu.Lock()
	s := o.stats
	o.statsMu.Unlock()
	s.Depth = max(s.Depth-queued, 0)
	if s.Depth == 0 {
		s.OldestReceivedAt, s.OldestSynced = time.Time{}, false
	}
	return s
}

// Close commits every request already queued, stops the writer and closes
// the file. Later calls fail with ErrClosed. Close is idempotent.
func (o *Outbox) Close() error {
	o.closeMu.Lock()
	if o.closed {
		o.closeMu.Unlock()
		return nil
	}
	o.closed = true
	close(o.reqs)
	o.closeMu.Unlock()
	<-o.done

	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.db.Close()
	o.db = nil
	if err != nil {
		return fmt.Errorf("close outbox %s: %w", o.path, err)
	}
	return nil
}

// submit queues r for the writer and waits for its result. owned reports
// whether the caller may reuse r: not when ctx ended while r was queued.
func (o *Outbox) submit(ctx context.Context, r *request) (owned bool, err error) {
	o.closeMu.RLock()
	if o.closed {
		o.closeMu.RUnlock()
		o.metrics.refusedClosed.Inc()
		return true, ErrClosed
	}
	select {
	case o.reqs <- r:
	case <-ctx.Done():
		o.closeMu.RUnlock()
		return true, ctx.Err()
	}
	o.closeMu.RUnlock()
	select {
	case <-r.done:
		return true, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
