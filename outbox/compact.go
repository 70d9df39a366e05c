package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A bbolt file never shrinks: after a long outage it keeps the size of the
// largest backlog. Compaction copies the live pages into a new file.
const (
	compactMinGain    = 1 << 20 // below this Compact does nothing
	worthwhileMinFile = 8 << 20
	worthwhileFactor  = 4
	compactTxMaxBytes = 4 << 20 // commit the copy in steps, to bound memory
)

// Compact copies the live data into a fresh file and puts it in place of the
// old one. Appends issued meanwhile wait in the queue and are committed
// afterwards; readers wait only for the final swap. It does nothing when
// less than 1 MiB would be gained.
func (o *Outbox) Compact() error {
	_, err := o.compactRequest(false)
	return err
}

// CompactIfWorthwhile compacts when the file is more than 4 times the size
// of its live pages and larger than 8 MiB, and reports whether it did.
func (o *Outbox) CompactIfWorthwhile() (bool, error) {
	return o.compactRequest(true)
}

func (o *Outbox) compactRequest(ifWorth bool) (bool, error) {
	r := newRequest(context.Background(), opCompact)
	r.ifWorth = ifWorth
	_, err := o.submit(context.Background(), r)
	done := r.compacted
	r.release()
	return done, err
}

// compact runs in the writer goroutine, so no write can interleave.
func (o *Outbox) compact(ifWorth bool) (did bool, err error) {
	err = guard(func() (err error) {
		did, err = o.compactFile(ifWorth)
		return err
	})
	if err != nil {
		if errors.Is(err, errCorrupt) {
			o.suspect(err)
		}
		return false, fmt.Errorf("compact outbox %s: %w", o.path, err)
	}
	return did, nil
}

func (o *Outbox) compactFile(ifWorth bool) (bool, error) {
	file, live, err := o.space()
	if err != nil {
		return false, err
	}
	gain := file - live
	if gain < compactMinGain || ifWorth && (file <= worthwhileFactor*live || file <= worthwhileMinFile) {
		return false, nil
	}
	start := time.Now()
	if err := o.swapCompacted(); err != nil {
		return false, err
	}
	o.statAt = time.Time{} // the file changed: look again
	o.publish()
	o.log.Info("outbox compacted", "bytes_before", file, "bytes_after", o.Stats().FileBytes, "took", time.Since(start).Round(time.Millisecond))
	return true, nil
}

// space returns the file size and the bytes of the pages in use.
func (o *Outbox) space() (file, live int64, err error) {
	fi, err := os.Stat(o.path)
	if err != nil {
		return 0, 0, fmt.Errorf("stat outbox: %w", err)
	}
	var used int64
	if err := o.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		return 0, 0, err
	}
	s := o.db.Stats()
	free := int64(s.FreePageN+s.PendingPageN) * int64(o.db.Info().PageSize)
	return fi.Size(), used - free, nil
}

// swapCompacted copies the file into "<path>.compact", renames the copy
// over the original and serves from it. The copy keeps its lock across the
// rename, so the file is never unlocked, and a failure leaves the original
// in service.
func (o *Outbox) swapCompacted() (err error) {
	tmp := o.path + suffixCompact
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, boltOptions(o.opts))
	if err != nil {
		return err
	}
	swapped := false
	defer func() { // also on a panic, which guard turns into an error
		if !swapped {
			_ = dst.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := bolt.Compact(dst, o.db, compactTxMaxBytes); err != nil {
		return err
	}
	// Every commit of the copy was fsynced; the rename is made durable below.
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := os.Rename(tmp, o.path); err != nil {
		return err
	}
	swapped = true
	old := o.db
	o.db = dst
	if err := old.Close(); err != nil {
		o.log.Warn("closing the outbox file replaced by its compacted copy failed", "err", err)
	}
	return syncDir(filepath.Dir(o.path))
}
