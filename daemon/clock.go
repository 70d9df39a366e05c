package daemon

import (
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/outbox"
)

// clockFloor is a time before which the wall clock cannot be right: a router
// without a real-time clock boots near 1970 or its firmware's date.
var clockFloor = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// edgeMargin makes the edge's window a little stricter than central's.
// Central judges a forwarded message against its received_at corrected by
// an offset measured with ~1 s resolution and a 5 s tolerance; without a
// margin, a message at the very edge of the window could be acked here and
// then dead-lettered at central. With it, such a message is refused here,
// where the phone hears why.
const edgeMargin = time.Minute

// now is the edge's reference time and whether it can be trusted. With
// forwarding on it is central's clock as the forwarder measured it
// (trusted once measured since start): the router's own clock may be far
// off. Standalone it is the wall clock, trusted once it looks plausible.
func (d *Daemon) now() (time.Time, bool) {
	if d.fwd != nil {
		return d.fwd.Clock().Now()
	}
	now := time.Now()
	return now, !now.Before(clockFloor)
}

// window is the time window phones' data is judged against. Forwarding
// on, it is central's window (its retention, when shorter than ours), a
// little stricter, once central's clock is known; before that only the domain's absolute bounds apply (a zero
// Window), as the edge cannot tell "too old" from "clock wrong". A
// standalone edge refuses data older than the retention only while its
// clock is plausible, and never "future" data: a router that booted
// without a real-time clock runs behind until NTP syncs.
func (d *Daemon) window() hearth.Window {
	ref, trusted := d.now()
	retention := time.Duration(d.cfg.RetentionDays) * 24 * time.Hour
	switch {
	case !trusted:
		return hearth.Window{}
	case d.fwd != nil:
		if central := d.fwd.CentralRetention(); central > 0 {
			retention = min(retention, central)
		}
		return hearth.Window{Now: ref, MaxAge: retention - edgeMargin, MaxFuture: hearth.DefaultMaxFuture - edgeMargin}
	}
	return hearth.Window{Now: ref, MaxAge: retention}
}

// ReceivedAt is what a newly received message is stamped with: central's
// estimated time and true once the forwarder has measured it, so central
// need not correct it; otherwise the wall clock (in UTC) and false, and
// central corrects it by the offset it measures from the batch.
func (d *Daemon) ReceivedAt() (time.Time, bool) {
	if d.fwd != nil {
		if t, synced := d.fwd.Clock().Now(); synced {
			return t.UTC(), true
		}
	}
	return time.Now().UTC(), false
}

// oldestAge is the age of the oldest pending message, taken on the clock
// its receive time was stamped on; 0 when the outbox is empty.
func (d *Daemon) oldestAge(st outbox.Stats) time.Duration {
	if st.OldestReceivedAt.IsZero() {
		return 0
	}
	now := time.Now()
	if st.OldestSynced && d.fwd != nil {
		now, _ = d.fwd.Clock().Now()
	}
	return max(now.Sub(st.OldestReceivedAt), 0)
}
