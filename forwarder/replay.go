package forwarder

import (
	"context"
	"time"
)

// A fleet of edges that come back after an outage must not replay their
// backlogs at once, and the data of today must not wait behind days of
// history. So while the oldest pending message is older than ReplayAge:
//
//   - the send rate is held to MaxRate messages per second (on top of the
//     start jitter; a Retry-After from central still wins: it pauses the
//     loop for as long as it says), and
//   - messages that arrive after the backlog are sent ahead of it: the
//     backlog is the messages up to the last seq when the replay began,
//     read oldest first, and each read takes the newer ones first.
//
// Central keeps the newest version of each key whatever the order of
// arrival (newer-wins), so sending out of order is safe.

// cursor is where the send loop reads next.
type cursor struct {
	after  uint64 // the newest seq read (of the backlog, while replaying)
	fresh  uint64 // while replaying: the newest seq read past end
	end    uint64 // while replaying: the backlog's last seq; 0 when not replaying
	reread bool   // read again from the oldest once nothing is in flight
}

// fromOldest starts reading again from the oldest pending message, or
// from just after seq skip (not 0) when that message must wait a turn.
func (c *cursor) fromOldest(skip uint64) {
	c.after, c.fresh, c.reread = skip, 0, false
}

// read fills fl with the next batch and moves the cursor past it.
func (f *Forwarder) read(fl *flight, c *cursor) (int, error) {
	f.checkReplay(c)
	if c.end > 0 {
		n, err := f.readRange(fl, max(c.fresh, c.end), 0) // fresh data first
		if err != nil || n > 0 {
			if n > 0 {
				c.fresh = fl.batch.Seqs[n-1]
			}
			return n, err
		}
		if n, err = f.readRange(fl, c.after, c.end); err != nil || n > 0 {
			if n > 0 {
				c.after = fl.batch.Seqs[n-1]
			}
			return n, err
		}
		// Nothing left of the backlog to read: it has all been sent.
		c.after, c.end, c.fresh = max(c.after, c.fresh), 0, 0
		f.log.Info("backlog replayed")
	}
	n, err := f.readRange(fl, c.after, 0)
	if n > 0 {
		c.after = fl.batch.Seqs[n-1]
	}
	return n, err
}

// checkReplay sets the rate cap in effect, and starts replaying a backlog
// (fresh data first) when one is found while reading from the oldest.
func (f *Forwarder) checkReplay(c *cursor) {
	old := f.cfg.ReplayAge > 0 && f.backlogAge(f.queue.Stats()) > f.cfg.ReplayAge
	rate := 0.0
	if old {
		rate = f.cfg.MaxRate
	}
	if rate != f.rate {
		f.rate = rate
		f.mu.Lock()
		f.rateCap = rate
		f.mu.Unlock()
		f.metrics.rateCap.Set(rate)
		if rate > 0 {
			f.log.Info("replaying a backlog older than forward_replay_age; sending at most forward_max_rate messages/s",
				"max_rate", rate, "replay_age", f.cfg.ReplayAge)
		}
	}
	if old && c.end == 0 && c.after == 0 {
		c.end, c.fresh = f.queue.LastSeq(), 0
	}
}

// replayCap bounds a batch to one second's worth of messages under a
// rate cap, so the pace is even.
func (f *Forwarder) replayCap(n int) int {
	if f.rate > 0 {
		return max(1, min(n, int(f.rate)))
	}
	return n
}

// pace waits until the next batch may be read under the rate cap.
func (f *Forwarder) pace(ctx context.Context) {
	if f.rate <= 0 {
		return
	}
	if d := time.Until(f.nextSend); d > 0 {
		sleep(ctx, d)
	}
}

// paced notes a batch of n messages sent: the next one waits n/rate.
func (f *Forwarder) paced(n int) {
	if f.rate <= 0 {
		f.nextSend = time.Time{}
		return
	}
	from := time.Now()
	if f.nextSend.After(from) {
		from = f.nextSend
	}
	f.nextSend = from.Add(time.Duration(float64(n) / f.rate * float64(time.Second)))
}
