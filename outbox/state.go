package outbox

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// state holds the counters the writer keeps in step with its commits. All
// but oldest are persisted in the meta bucket in the same transaction, so
// they are right after a kill -9; oldest is read from the queue's head.
type state struct {
	depth, bytes, dead int64
	deadBytes          int64 // quota size of the dead letters
	oldest             time.Time
	oldestSynced       bool // oldest is on central's clock
}

// keyDeadBytes holds state.deadBytes in the meta bucket.
var keyDeadBytes = []byte("dead_bytes")

// heal clamps counters that a record of unknown size could have pushed off.
func (s *state) heal() {
	if s.depth <= 0 {
		s.depth, s.bytes = 0, 0
	}
	s.bytes = max(s.bytes, 0)
	s.dead = max(s.dead, 0)
	if s.dead == 0 {
		s.deadBytes = 0
	}
	s.deadBytes = max(s.deadBytes, 0)
}

// put stores the counters in meta, using buf for the values, which bbolt
// keeps referencing until the transaction ends.
func (s *state) put(meta *bolt.Bucket, buf []byte) ([]byte, error) {
	if meta == nil {
		return buf, fmt.Errorf("%w: meta bucket missing", errCorrupt)
	}
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.depth))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.bytes))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.dead))
	buf = binary.BigEndian.AppendUint64(buf, uint64(s.deadBytes))
	for i, k := range [][]byte{keyDepth, keyBytes, keyDead, keyDeadBytes} {
		if err := meta.Put(k, buf[8*i:8*i+8]); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// loadState reads the counters from meta. ok is false when one is missing
// or they disagree with the queue, and they must be recounted.
func loadState(tx *bolt.Tx) (s state, ok bool, err error) {
	meta, pending, dead := tx.Bucket(bucketMeta), tx.Bucket(bucketPending), tx.Bucket(bucketDead)
	if pending == nil || dead == nil {
		return s, false, fmt.Errorf("%w: format %d file without its buckets", errCorrupt, FormatVersion)
	}
	vals := [4]int64{}
	for i, k := range [][]byte{keyDepth, keyBytes, keyDead, keyDeadBytes} {
		v, found, err := getU64(meta, k)
		if err != nil {
			return s, false, err
		}
		if !found && i == 3 {
			// Written before dead letters counted against the quota:
			// only the dead letters (capped, few) are read, not the
			// queue; the next commit stores the sum.
			vals[i] = deadBytesOf(dead)
			continue
		}
		if !found {
			return s, false, nil
		}
		vals[i] = int64(v)
	}
	s = state{depth: vals[0], bytes: vals[1], dead: vals[2], deadBytes: vals[3]}
	s.oldest, s.oldestSynced = headTime(pending)
	head, _ := pending.Cursor().First()
	if s.depth < 0 || s.bytes < 0 || s.dead < 0 || s.deadBytes < 0 || (s.depth == 0) != (head == nil) {
		return s, false, nil
	}
	return s, true, nil
}

// deadBytesOf sums the quota size of the dead letters.
func deadBytesOf(dead *bolt.Bucket) int64 {
	var n int64
	_ = dead.ForEach(func(_, v []byte) error {
		n += recordSize(recordOf(v))
		return nil
	})
	return n
}

// recount computes the counters by reading every record: for migration
// and for counters found wrong.
func recount(tx *bolt.Tx) state {
	var s state
	_ = tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
		s.depth++
		s.bytes += recordSize(v)
		return nil
	})
	_ = tx.Bucket(bucketDead).ForEach(func(_, _ []byte) error {
		s.dead++
		return nil
	})
	s.deadBytes = deadBytesOf(tx.Bucket(bucketDead))
	s.oldest, s.oldestSynced = headTime(tx.Bucket(bucketPending))
	return s
}

// getU64 reads an 8-byte counter; a value of another length is corruption.
func getU64(b *bolt.Bucket, k []byte) (v uint64, found bool, err error) {
	raw := b.Get(k)
	if raw == nil {
		return 0, false, nil
	}
	if len(raw) != 8 {
		return 0, false, fmt.Errorf("%w: meta %q is %d bytes, want 8", errCorrupt, k, len(raw))
	}
	return binary.BigEndian.Uint64(raw), true, nil
}
