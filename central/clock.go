package central

import (
	"time"

	"github.com/guardianai/hearth"
)

// EdgeClock is what central knows of an edge's clock while it reads one
// batch: the offset of the batch's sent_at from central's clock.
type EdgeClock struct {
	Now       time.Time     // central's clock when the batch arrived
	Offset    time.Duration // sent_at minus Now, when Known
	Known     bool          // false: sent_at is too far off to represent (year 1, year 9999)
	Tolerance time.Duration // offsets within it are transit time, not a wrong clock
}

// MeasureEdgeClock measures an edge's clock from a batch's sent_at. An
// offset too large for a time.Duration (±292 years) is never a reason to
// refuse data: it is unknown, and the batch's times become central's now.
func MeasureEdgeClock(sentAt, now time.Time, tolerance time.Duration) EdgeClock {
	offset := sentAt.Sub(now) // saturates instead of overflowing
	return EdgeClock{Now: now, Offset: offset, Known: now.Add(offset).Equal(sentAt), Tolerance: tolerance}
}

// shift is how much to subtract from the edge's own times: the offset
// when it is beyond the tolerance, zero otherwise.
func (c EdgeClock) shift() time.Duration {
	if c.Offset > c.Tolerance || c.Offset < -c.Tolerance {
		return c.Offset
	}
	return 0
}

// ReceivedAt maps a message's received_at to central's clock, the
// reference its data is judged against. A synced time is already on
// central's clock; the edge's own is shifted by the offset, or is now when
// the offset is unknown. A time still more than the tolerance ahead of now
// (an edge clock that jumped between receiving and sending), or before any
// plausible time, becomes now, so a message can never win newer-wins
// against data that arrives after it.
func (c EdgeClock) ReceivedAt(recv time.Time, synced bool) time.Time {
	switch {
	case synced:
	case !c.Known:
		return c.Now
	default:
		recv = recv.Add(-c.shift())
	}
	if recv.After(c.Now.Add(c.Tolerance)) || recv.Before(hearth.EarliestTime) {
		return c.Now
	}
	return recv
}
