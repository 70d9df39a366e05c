package forwarder

import (
	"net/http"
	"sync"
	"time"
)

// dateResolution is the resolution of an HTTP Date header: central's time
// at the answer lies in [Date, Date+1s).
const dateResolution = time.Second

// offsetLogStep is how far the measured offset must move before it is
// logged again: less is the Date header's resolution and network jitter,
// more is a clock that was set (NTP on the router, or central's).
const offsetLogStep = 5 * time.Second

// Clock is central's time as the edge estimates it from the Date header of
// central's answers. A home router's wall clock can be far off (no
// real-time clock, NTP not synced yet) and can jump when NTP syncs; the
// estimate is anchored to Go's monotonic clock instead, so it is immune to
// both. It is safe for concurrent use; the zero value is unsynced.
type Clock struct {
	mu       sync.Mutex
	local    time.Time // the local anchor, with its monotonic reading
	central  time.Time // central's estimated time at local
	measured bool      // a measurement exists (since this process started)
	last     time.Time // the latest time Now returned: it never goes back
}

// observe records a measurement from an answer whose request left at sent
// and whose answer arrived at received (both from time.Now, so both carry
// the monotonic reading). Central stamped Date somewhere between the two:
// the midpoint is the best guess, and the middle of Date's second the best
// guess of central's time then. An unparsable or missing Date is ignored;
// observe reports whether the measurement was taken.
func (c *Clock) observe(sent, received time.Time, date string) bool {
	if date == "" {
		return false
	}
	at, err := http.ParseTime(date)
	if err != nil {
		return false
	}
	mid := sent.Add(received.Sub(sent) / 2)
	c.mu.Lock()
	c.local, c.central, c.measured = mid, at.Add(dateResolution/2).UTC(), true
	c.mu.Unlock()
	return true
}

// Now returns central's estimated time now and true once a measurement
// exists; before that, the local wall clock and false. The estimate does
// not step back by the second or so a new measurement may move it (Date's
// resolution, network jitter): two updates of one key stamped a moment
// apart must keep their order at central. A larger step back is a clock
// that was set, and is followed.
func (c *Clock) Now() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.measured {
		return time.Now().UTC(), false
	}
	t := c.central.Add(time.Since(c.local))
	if t.Before(c.last) && c.last.Sub(t) < offsetLogStep {
		t = c.last
	}
	c.last = t
	return t, true
}

// Offset is central's clock minus the local wall clock as last measured
// (for logs and /status); 0 before any measurement.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.measured {
		return 0
	}
	return c.central.Sub(c.local.Round(0)) // Round(0): wall clock, not monotonic
}

// noteClock measures central's clock from an answer and logs the offset
// when first measured and whenever it moves by more than offsetLogStep.
func (f *Forwarder) noteClock(sent, received time.Time, date string) {
	if !f.clock.observe(sent, received, date) {
		return
	}
	off := f.clock.Offset()
	f.mu.Lock()
	first := !f.offsetLogged
	moved := first || (off-f.loggedOffset).Abs() > offsetLogStep
	if moved {
		f.offsetLogged, f.loggedOffset = true, off
	}
	f.mu.Unlock()
	switch {
	case first:
		f.log.Info("measured central's clock; received_at is now stamped on it", "offset", off.Round(time.Millisecond))
	case moved:
		f.log.Info("central's clock offset moved (a clock was set)", "offset", off.Round(time.Millisecond))
	}
}
