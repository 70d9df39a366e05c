package outbox

import (
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
			d, err := decodeDead(keySeq(k), v)
			if err != nil {
				d = DeadLetter{Seq: keySeq(k), Reason: err.Error(), Raw: append([]byte(nil), v...)}
			}
			out = append(out, d)
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
