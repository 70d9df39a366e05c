package forwarder

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/guardianai/hearth/outbox"
	"github.com/prometheus/client_golang/prometheus"
)

// datedCentral answers every request with status and a Date header offset
// from the local clock; the roster lists child.
func datedCentral(t *testing.T, offset time.Duration, status int, child string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(offset).UTC().Format(http.TimeFormat))
		w.WriteHeader(status)
		if r.URL.Path == hearth.PathEdgeRoster && status == http.StatusOK {
			json.NewEncoder(w).Encode(hearth.RosterReply{Children: []string{child}})
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// nearly reports whether got is within tol of want.
func nearly(got, want time.Time, tol time.Duration) bool {
	return got.Sub(want).Abs() <= tol
}

// Ensure that the clock is unsynced before any answer, and reports
// central's time (here 90 days ahead of the local clock) once a roster
// answer has carried a Date header.
func TestClock_FromRosterAnswer(t *testing.T) {
	const ahead = 90 * 24 * time.Hour
	url := datedCentral(t, ahead, http.StatusOK, "kid")
	r := OpenRoster(filepath.Join(t.TempDir(), "roster.json"), quiet)
	f := runForwarder(t, openOutbox(t), url, "tok", r, nil)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, synced := f.Clock().Now(); !synced {
			return fmt.Errorf("clock not synced")
		}
		return nil
	})
	now, _ := f.Clock().Now()
	if want := time.Now().Add(ahead); !nearly(now, want, time.Minute) {
		t.Fatalf("central's time %s, want about %s", now, want)
	}
	if off := f.Clock().Offset(); (off - ahead).Abs() > time.Minute {
		t.Fatalf("offset %s, want about %s", off, ahead)
	}
}

// Ensure that an answer refusing a batch (503) still measures the clock:
// every answer carries a Date.
func TestClock_FromFailedBatch(t *testing.T) {
	const behind = -45 * 24 * time.Hour
	url := datedCentral(t, behind, http.StatusServiceUnavailable, "")
	ob := openOutbox(t)
	appendMsgs(t, ob, location("kid", 0))
	f := runForwarder(t, ob, url, "tok", nil, nil)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, synced := f.Clock().Now(); !synced {
			return fmt.Errorf("clock not synced")
		}
		return nil
	})
	if now, _ := f.Clock().Now(); !nearly(now, time.Now().Add(behind), time.Minute) {
		t.Fatalf("central's time %s, want about 45 days behind", now)
	}
	if ob.Stats().Depth != 1 {
		t.Fatal("the refused batch left the outbox")
	}
}

// Ensure that the clock is unsynced before any answer and ignores answers
// without a usable Date.
func TestClock_UnsyncedWithoutDate(t *testing.T) {
	f, err := New(Config{URL: "http://127.0.0.1:1", Token: "tok"}, openOutbox(t), nil, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Clock()
	if now, synced := c.Now(); synced || !nearly(now, time.Now(), time.Minute) || c.Offset() != 0 {
		t.Fatalf("new forwarder's clock: %s, %v, offset %s", now, synced, c.Offset())
	}
	for _, date := range []string{"", "yesterday", "2026-01-01T00:00:00Z"} {
		if c.observe(time.Now(), time.Now(), date) {
			t.Errorf("Date %q was taken", date)
		}
	}
	if _, synced := c.Now(); synced {
		t.Fatal("synced by unusable Date headers")
	}
}

// Ensure that the measurement is anchored halfway through the round trip
// at the middle of the Date's second, and then runs on the monotonic clock.
func TestClock_AnchorsAtMidpoint(t *testing.T) {
	var c Clock
	date := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	received := time.Now()
	sent := received.Add(-4 * time.Second) // a 4 s round trip
	if !c.observe(sent, received, date.Format(http.TimeFormat)) {
		t.Fatal("Date not taken")
	}
	anchor := received.Add(-2 * time.Second)
	before := time.Since(anchor)
	now, synced := c.Now()
	after := time.Since(anchor)
	base := date.Add(dateResolution / 2)
	if !synced || now.Before(base.Add(before)) || now.After(base.Add(after)) {
		t.Fatalf("Now = %s, want in [%s, %s]", now, base.Add(before), base.Add(after))
	}
	if want := base.Sub(anchor.Round(0)); c.Offset() != want {
		t.Fatalf("Offset = %s, want %s", c.Offset(), want)
	}
}

// Ensure that a new measurement a second behind the last does not move
// the estimate back (stamps keep their order), while a clock that was set
// back by minutes is followed.
func TestClock_NeverStepsBackBySmallAmounts(t *testing.T) {
	var c Clock
	date := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	now := time.Now()
	c.observe(now, now, date.Format(http.TimeFormat))
	first, _ := c.Now()
	c.observe(now, now, date.Add(-time.Second).Format(http.TimeFormat))
	if second, _ := c.Now(); second.Before(first) {
		t.Fatalf("estimate stepped back from %s to %s", first, second)
	}
	c.observe(now, now, date.Add(-10*time.Minute).Format(http.TimeFormat))
	if third, _ := c.Now(); !third.Before(first.Add(-9 * time.Minute)) {
		t.Fatalf("a clock set back 10 minutes was not followed: %s after %s", third, first)
	}
}

// headerLog records the edge headers of each request central receives.
type headerLog struct {
	mu   sync.Mutex
	seen map[string]http.Header // by path, the first request's headers
}

// Ensure that every request (roster and batch) names the edge, its
// version and its backlog.
func TestForwarder_Requests_CarryEdgeHeaders(t *testing.T) {
	hl := &headerLog{seen: map[string]http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hl.mu.Lock()
		if hl.seen[r.URL.Path] == nil {
			hl.seen[r.URL.Path] = r.Header.Clone()
		}
		hl.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable) // keep the batch: the backlog stays put
	}))
	t.Cleanup(srv.Close)
	ob := openOutbox(t)
	old := location("kid", 0)
	old.ReceivedAt = time.Now().Add(-2 * time.Hour)
	appendMsgs(t, ob, old, location("kid", 1))
	r := OpenRoster(filepath.Join(t.TempDir(), "roster.json"), quiet)
	runForwarder(t, ob, srv.URL, "tok", r, func(c *Config) { c.Version = "1.2.3-test" })
	testutil.WaitFor(t, 5*time.Second, func() error {
		hl.mu.Lock()
		defer hl.mu.Unlock()
		if len(hl.seen) < 2 {
			return fmt.Errorf("requests seen on %d paths", len(hl.seen))
		}
		return nil
	})
	hl.mu.Lock()
	defer hl.mu.Unlock()
	for _, path := range []string{hearth.PathEdgeRoster, hearth.PathEdgeBatches} {
		h := hl.seen[path]
		if h.Get(hearth.HeaderEdgeID) != "test-edge" || h.Get(hearth.HeaderEdgeVersion) != "1.2.3-test" ||
			h.Get(hearth.HeaderBacklogMessages) != "2" {
			t.Errorf("%s: headers %v", path, h)
		}
		age, err := strconv.Atoi(h.Get(hearth.HeaderBacklogOldestSecs))
		if err != nil || age < 7200 || age > 7200+3600 {
			t.Errorf("%s: backlog age %q, want about 7200", path, h.Get(hearth.HeaderBacklogOldestSecs))
		}
	}
}

// Ensure that the backlog's age is taken on central's clock when the
// oldest message was stamped on it, and is 0 when the outbox is empty.
func TestForwarder_BacklogAge_OnTheMessagesClock(t *testing.T) {
	f := &Forwarder{clock: &Clock{}}
	ahead := 30 * 24 * time.Hour
	if !f.clock.observe(time.Now(), time.Now(), time.Now().Add(ahead).UTC().Format(http.TimeFormat)) {
		t.Fatal("Date not taken")
	}
	centralNow, _ := f.clock.Now()
	st := outbox.Stats{Depth: 1, OldestReceivedAt: centralNow.Add(-time.Hour), OldestSynced: true}
	if age := f.backlogAge(st); (age - time.Hour).Abs() > time.Minute {
		t.Errorf("synced head: age %s, want about 1h", age)
	}
	st = outbox.Stats{Depth: 1, OldestReceivedAt: time.Now().Add(-time.Hour)}
	if age := f.backlogAge(st); (age - time.Hour).Abs() > time.Minute {
		t.Errorf("local head: age %s, want about 1h", age)
	}
	if age := f.backlogAge(outbox.Stats{}); age != 0 {
		t.Errorf("empty outbox: age %s", age)
	}
}

// Ensure that a batch tells central which messages are on its clock.
func TestBatch_Synced(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	msgs := []hearth.Message{location("kid", 0), location("kid", 1)}
	msgs[1].Synced = true
	if err := ob.Store(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	batch := outbox.Batch{JSON: appendBatchHead(nil, "e", time.Now())}
	if err := ob.ReadBatch(&batch, 0, 10, 1<<20); err != nil {
		t.Fatal(err)
	}
	var b struct {
		Messages []hearth.BatchMessage `json:"messages"`
	}
	if err := json.Unmarshal(closeBatch(batch.JSON), &b); err != nil || len(b.Messages) != 2 {
		t.Fatalf("%v, sent %d", err, len(b.Messages))
	}
	if b.Messages[0].Synced || !b.Messages[1].Synced {
		t.Fatalf("synced flags %v, %v; want false, true", b.Messages[0].Synced, b.Messages[1].Synced)
	}
}
