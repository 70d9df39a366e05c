package forwarder

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
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

// Ensure that replaying a backlog fresh-first loses nothing while central
// fails often (503 with and without Retry-After, 502 from a proxy, 429)
// and new messages keep arriving: in the end every message was stored at
// least once, the outbox is empty and nothing was dead-lettered.
func TestForwarder_Run_ReplayWithFailuresLosesNothing(t *testing.T) {
	const backlog, fresh = 400, 100
	ob := openOutbox(t)
	old := locations("kid", 0, backlog)
	for i := range old {
		old[i].ReceivedAt = time.Now().Add(-time.Hour)
	}
	appendMsgs(t, ob, old...)
	var mu sync.Mutex
	stored := map[uint64]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	fc := &fakeCentral{answers: []func(http.ResponseWriter, []uint64){func(w http.ResponseWriter, seqs []uint64) {
		mu.Lock()
		roll := rng.IntN(10)
		mu.Unlock()
		switch roll {
		case 0:
			status(503, "")(w, seqs)
		case 1:
			status(502, "")(w, seqs)
		case 2:
			status(429, "0")(w, seqs)
		default:
			mu.Lock()
			for _, s := range seqs {
				stored[s] = true
			}
			mu.Unlock()
			allOK(w, seqs)
		}
	}}}
	url := fc.serve(t)
	runForwarder(t, ob, url, "tok", nil, func(c *Config) {
		c.MaxRate, c.ReplayAge, c.BatchMessages = 2000, 5*time.Minute, 50
		c.BaseBackoff, c.MaxBackoff = time.Millisecond, 10*time.Millisecond
	})
	for i := 0; i < fresh; i += 10 {
		appendMsgs(t, ob, locations("kid", backlog+i, 10)...)
		time.Sleep(5 * time.Millisecond)
	}
	testutil.WaitFor(t, 30*time.Second, func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("depth %d", d)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for s := uint64(1); s <= backlog+fresh; s++ {
		if !stored[s] {
			t.Fatalf("seq %d left the outbox without being stored", s)
		}
	}
	if d := ob.Stats().DeadLetters; d != 0 {
		t.Fatalf("%d dead letters", d)
	}
}
