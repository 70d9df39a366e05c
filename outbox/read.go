package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ReadOldest returns up to n pending messages, oldest first, as copies the
// caller owns. A record that does not decode is moved to the dead letters
// with a reason starting "undecodable record", so it never blocks the queue.
func (o *Outbox) ReadOldest(n int) ([]Record, error) {
	if n <= 0 {
		return nil, nil
	}
	for {
		recs, bad, err := o.readPending(n)
		if err != nil || len(bad) == 0 {
			return recs, err
		}
		o.log.Error("moving undecodable outbox records to the dead letters", "count", len(bad), "first_reason", bad[0].reason)
		moved, err := o.deadLetter(bad)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if moved == 0 {
			// The cursor shows records that a lookup cannot find: the tree
			// itself is damaged. Serve what reads, and check on next start.
			o.suspect(fmt.Errorf("%w: %d undecodable records cannot be moved", errCorrupt, len(bad)))
			return recs, nil
		}
	}
}

// readPending reads up to n records and the keys of those that do not decode.
func (o *Outbox) readPending(n int) (recs []Record, bad []deadItem, err error) {
	err = o.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for k, v := c.First(); k != nil && len(recs) < n; k, v = c.Next() {
			if o.deferred.has(keySeq(k)) {
				continue
			}
			msg, err := decodeRecord(v)
			if err == nil && len(k) != 8 {
				err = errBadRecord
			}
			if err != nil {
				bad = append(bad, deadItem{key: append([]byte(nil), k...), reason: err.Error()})
				continue
			}
			recs = append(recs, Record{Seq: keySeq(k), Msg: msg})
		}
		return nil
	})
	return recs, bad, err
}

// DeadLetters returns up to n dead letters, oldest first.
func (o *Outbox) DeadLetters(n int) ([]DeadLetter, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []DeadLetter
	err := o.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			out = append(out, readDead(k, v))
		}
		return nil
	})
	return out, err
}

// view runs fn in a read transaction on the current file.
func (o *Outbox) view(fn func(tx *bolt.Tx) error) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.db == nil {
		return ErrClosed
	}
	err := guard(func() error { return o.db.View(fn) })
	if errors.Is(err, errCorrupt) {
		o.suspect(err)
	}
	return err
}

// Batch is a reusable buffer for ReadBatch: the caller keeps one and
// passes it back each time, so a steady stream of batches allocates nothing.
type Batch struct {
	// JSON holds what the caller put before the messages (a batch's head),
	// then the messages read, as central takes them (hearth.BatchMessage),
	// separated by commas.
	JSON []byte
	// Seqs are the sequence numbers of the messages in JSON, in order.
	Seqs []uint64
	// Until, when not 0, is the highest seq ReadBatch reads: a reader
	// drains a range (a backlog) apart from what came after it.
	Until uint64
}

// ReadBatch appends to b.JSON the oldest pending messages, at most n, and
// stops before the one that would take b.JSON (plus 2 bytes to close the
// list) past maxBytes; the first is always taken, so that a message larger
// than maxBytes is sent alone rather than never. A record of this build's
// format is copied as stored; what it does not take is not decoded. A
// record that cannot be read or encoded is moved to the dead letters with
// the reason, as ReadOldest does. Messages whose delete is queued
// (DeleteLater) are skipped: they are done. Only messages with a sequence
// number above after are read, so that a reader with a batch in flight
// can read the next one (0: from the oldest).
func (o *Outbox) ReadBatch(b *Batch, after uint64, n int, maxBytes int) error {
	b.Seqs = b.Seqs[:0]
	if n <= 0 {
		return nil
	}
	head := len(b.JSON)
	for {
		b.JSON, b.Seqs = b.JSON[:head], b.Seqs[:0]
		bad, err := o.readBatch(b, after, n, maxBytes)
		if err != nil || len(bad) == 0 {
			return err
		}
		if err := o.moveBad(bad); err != nil {
			return err
		}
	}
}

// moveBad dead-letters records that a read found undecodable.
func (o *Outbox) moveBad(bad []deadItem) error {
	o.log.Error("moving undecodable outbox records to the dead letters", "count", len(bad), "first_reason", bad[0].reason)
	moved, err := o.deadLetter(bad)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if moved == 0 {
		o.suspect(fmt.Errorf("%w: %d undecodable records cannot be moved", errCorrupt, len(bad)))
		return fmt.Errorf("%w: undecodable records cannot be moved", errCorrupt)
	}
	return nil
}

func (o *Outbox) readBatch(b *Batch, after uint64, n int, maxBytes int) (bad []deadItem, err error) {
	err = o.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		var from [8]byte
		binary.BigEndian.PutUint64(from[:], after+1)
		for k, v := c.Seek(from[:]); k != nil && len(b.Seqs) < n; k, v = c.Next() {
			seq := keySeq(k)
			if b.Until != 0 && seq > b.Until {
				return nil
			}
			if o.deferred.has(seq) {
				continue
			}
			mark := len(b.JSON)
			var reason string
			b.JSON, reason = appendMessage(b.JSON, len(b.Seqs) > 0, seq, k, v)
			if reason != "" {
				b.JSON = b.JSON[:mark]
				bad = append(bad, deadItem{key: append([]byte(nil), k...), reason: reason})
				continue
			}
			if len(b.Seqs) > 0 && len(b.JSON)+2 > maxBytes {
				b.JSON = b.JSON[:mark]
				return nil
			}
			b.Seqs = append(b.Seqs, seq)
		}
		return nil
	})
	return bad, err
}

// appendMessage appends one batch message for the record v under key k,
// after a comma unless first; reason is why it cannot be sent, if so.
func appendMessage(dst []byte, comma bool, seq uint64, k, v []byte) ([]byte, string) {
	if len(k) != 8 {
		return dst, errBadRecord.Error() + ": key is not a sequence number"
	}
	r, err := parseRecord(v)
	if err != nil {
		return dst, err.Error()
	}
	if comma {
		dst = append(dst, ',')
	}
	dst = appendSeq(dst, seq)
	dst, err = r.appendFrag(dst)
	if err != nil {
		return dst, err.Error()
	}
	return dst, ""
}

// LastSeq is the highest sequence number ever given to a message (0 for
// a new outbox): every message appended later has a higher one.
func (o *Outbox) LastSeq() uint64 {
	var seq uint64
	_ = o.view(func(tx *bolt.Tx) error {
		seq = tx.Bucket(bucketPending).Sequence()
		return nil
	})
	return seq
}
