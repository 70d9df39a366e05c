package forwarder

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth/internal/testutil"
)

// Ensure that a backlog older than ReplayAge (after an outage) is sent at
// no more than MaxRate messages per second, and that messages arriving
// meanwhile are sent ahead of the rest of the backlog; the rate cap shows
// in Status while it applies and is lifted once the backlog is gone.
func TestForwarder_Run_ReplayRespectsRateAndSendsFreshFirst(t *testing.T) {
	const backlog, fresh, rate = 600, 5, 200.0
	ob := openOutbox(t)
	old := locations("kid", 0, backlog)
	for i := range old {
		old[i].ReceivedAt = time.Now().Add(-time.Hour) // waited out an outage
	}
	appendMsgs(t, ob, old...)
	var appended atomic.Bool
	fc := &fakeCentral{answers: []func(http.ResponseWriter, []uint64){func(w http.ResponseWriter, seqs []uint64) {
		if appended.CompareAndSwap(false, true) { // the first batch is in: new data arrives
			appendMsgs(t, ob, locations("kid", backlog, fresh)...)
		}
		allOK(w, seqs)
	}}}
	url := fc.serve(t)
	start := time.Now() // before the first read: the pace is counted from it
	f := runForwarder(t, ob, url, "tok", nil, func(c *Config) {
		c.MaxRate, c.ReplayAge = rate, 5*time.Minute
	})
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := f.Status(); st.RateCap != rate {
			return fmt.Errorf("status %+v: want the rate cap in effect", st)
		}
		return nil
	})
	testutil.WaitFor(t, 20*time.Second, func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("depth %d", d)
		}
		return nil
	})
	fc.mu.Lock()
	times, batches := fc.times, fc.seqs
	fc.mu.Unlock()

	// The rate: every batch but the last had to be paid for in time.
	before := 0
	for _, b := range batches[:len(batches)-1] {
		before += len(b)
		if len(b) > int(rate) {
			t.Errorf("a batch of %d under a cap of %v/s: more than a second's worth", len(b), rate)
		}
	}
	if elapsed, least := times[len(times)-1].Sub(start), time.Duration(float64(before)/rate*float64(time.Second)); elapsed < least {
		t.Fatalf("%d messages before the last batch went in %s: faster than %v/s (at least %s)", before, elapsed, rate, least)
	}
	// Fresh first: the new messages (seqs above the backlog's) went in a
	// batch before the one holding the backlog's last message.
	freshAt, lastOldAt := -1, -1
	for i, b := range batches {
		for _, s := range b {
			if s > backlog && freshAt < 0 {
				freshAt = i
			}
			if s == backlog {
				lastOldAt = i
			}
		}
	}
	if freshAt < 0 || lastOldAt < 0 || freshAt >= lastOldAt {
		t.Fatalf("fresh messages in batch %d, the backlog's last in batch %d: want fresh first (batches %v)", freshAt, lastOldAt, sizes(batches))
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := f.Status(); st.RateCap != 0 {
			return fmt.Errorf("rate cap %v once the backlog is gone", st.RateCap)
		}
		return nil
	})
}

func sizes(batches [][]uint64) []int {
	out := make([]int, len(batches))
	for i, b := range batches {
		out[i] = len(b)
	}
	return out
}
