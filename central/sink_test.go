package central

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
)

// Ensure that each Result becomes the error the ingest package answers
// its message with.
func TestResultErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		result    store.Result
		unknown   bool
		code, msg string
	}{
		{name: "ok", result: store.Result{Status: store.StatusOK}},
		{"unknown child", store.Result{Status: store.StatusRejected, Code: store.CodeUnknownChild, Error: "unknown child"}, true, "", "unknown child"},
		{"foreign child", store.Result{Status: store.StatusRejected, Code: store.CodeForeignChild, Error: "child does not belong to this home"}, true, "", "does not belong"},
		{"too old", store.Result{Status: store.StatusRejected, Code: hearth.CodeTooOld, Error: "timestamp: old"}, false, hearth.CodeTooOld, "timestamp: old"},
		{"invalid", store.Result{Status: store.StatusRejected, Code: hearth.CodeInvalid, Error: "logs.url: bad"}, false, hearth.CodeInvalid, "bad"},
		{"no code", store.Result{Status: store.StatusRejected, Error: "odd"}, false, hearth.CodeInvalid, "odd"},
	} {
		errs := ResultErrors([]store.Result{{Status: store.StatusOK}, tc.result})
		if errs[0] != nil {
			t.Fatalf("%s: an ok neighbour got %v", tc.name, errs[0])
		}
		err := errs[1]
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("%s: %v, want nil", tc.name, err)
		case tc.msg == "":
		case tc.unknown && !errors.Is(err, hearth.ErrUnknownChild):
			t.Errorf("%s: %v, want hearth.ErrUnknownChild", tc.name, err)
		case !tc.unknown && hearth.InvalidCode(err) != tc.code:
			t.Errorf("%s: %v (code %q), want an *InvalidError with code %q", tc.name, err, hearth.InvalidCode(err), tc.code)
		case !strings.Contains(err.Error(), tc.msg):
			t.Errorf("%s: %q does not contain %q", tc.name, err, tc.msg)
		}
	}
}

// Ensure that results are paired with the seqs of their messages, in order.
func TestWireResults(t *testing.T) {
	ms := []hearth.BatchMessage{{Seq: 7}, {Seq: 3}, {Seq: 9}}
	got := WireResults(ms, []store.Result{{Status: store.StatusOK}, {Status: store.StatusRejected, Code: store.CodeUnknownChild, Error: "unknown child"}, {Status: store.StatusOK}})
	want := []hearth.BatchResult{{Seq: 7, Status: "ok", Error: ""}, {Seq: 3, Status: "rejected", Code: "unknown_child", Error: "unknown child"}, {Seq: 9, Status: "ok", Error: ""}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("result %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Ensure that messages are checked one by one, their times corrected, and
// each judged against its own corrected received_at.
func TestPrepareMessages(t *testing.T) {
	loc := []byte(`{"timestamp":"2025-12-10T11:00:00Z","latitude":1,"longitude":2}`)
	ms := []hearth.BatchMessage{
		{Seq: 1, ChildHash: "kid", Type: "location", ReceivedAt: "2025-12-10T12:50:00Z", Via: "ws", Data: loc},
		{Seq: 2, Type: "location", ReceivedAt: "2025-12-10T12:50:00Z", Data: loc},
		{Seq: 3, ChildHash: "kid", Type: "weather", ReceivedAt: "2025-12-10T12:50:00Z", Data: loc},
		{Seq: 4, ChildHash: "kid", ReceivedAt: "2025-12-10T12:50:00Z", Data: loc},
		{Seq: 5, ChildHash: "kid", Type: "location", ReceivedAt: "2025-12-10T12:50:00Z"},
		{Seq: 6, ChildHash: "kid", Type: "location", Data: loc},
		{Seq: 7, ChildHash: "kid", Type: "location", ReceivedAt: "noon", Data: loc},
		{Seq: 8, ChildHash: "kid", Type: "location", ReceivedAt: "2025-12-10T12:50:00Z", Data: []byte(`{"timestamp":"2001-01-01T00:00:00Z","latitude":1,"longitude":2}`)},
		{Seq: 9, ChildHash: "kid", Type: "location", ReceivedAt: "2025-12-10T12:50:00Z", Data: []byte(`{"timestamp":"2025-12-10T11:00:00Z","latitude":100,"longitude":2}`)},
		{Seq: 10, ChildHash: "kid", Type: "screen_time", ReceivedAt: "2025-12-10T12:50:00Z", Data: []byte(`{"date":"2025-12-10","total_screen_time":60,"app_wise_data":{}}`)},
		{Seq: 11, ChildHash: "k\x00d", Type: "location", ReceivedAt: "2025-12-10T12:50:00Z", Data: loc},
		// 364 days old at the edge, 366 when it reaches central: judged
		// against its received_at, it is still inside the window.
		{Seq: 12, ChildHash: "kid", Type: "location", ReceivedAt: "2024-12-10T12:00:00Z", Synced: true, Data: []byte(`{"timestamp":"2023-12-12T12:00:00Z","latitude":1,"longitude":2}`)},
		{Seq: 13, ChildHash: "kid", Type: "location", ReceivedAt: "2025-12-10T12:50:00Z", Data: []byte(`{"timestamp":"2025-12-10T12:00:00+05:30","latitude":1,"longitude":2,"x":1}`)},
	}
	msgs, idx, results := PrepareMessages(ms, MeasureEdgeClock(t0.Add(time.Hour), t0, 5*time.Second), hearth.DefaultRetention)
	if len(msgs) != 3 || idx[0] != 0 || idx[1] != 9 || idx[2] != 11 {
		t.Fatalf("prepared %d messages at %v, want 3 at [0 9 11]", len(msgs), idx)
	}
	if m := msgs[0]; m.ChildHash != "kid" || m.Kind != hearth.KindLocation || m.Via != "ws" || !m.ReceivedAt.Equal(t0.Add(-10*time.Minute)) || m.Payload.Location == nil {
		t.Fatalf("message %+v: want received_at corrected to %s and the typed payload", m, t0.Add(-10*time.Minute))
	}
	if m := msgs[2]; !m.ReceivedAt.Equal(time.Date(2024, 12, 10, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("synced received_at moved to %s", m.ReceivedAt)
	}
	want := map[int]string{1: "child_hash", 2: "unknown message type", 3: "type", 4: "data", 5: "received_at", 6: "received_at", 7: "retention", 8: "latitude", 10: "child_hash", 12: "x"}
	codes := map[int]string{2: hearth.CodeUnknownType, 7: hearth.CodeTooOld}
	for i, r := range results {
		reason, rejected := want[i]
		if !rejected {
			if r != (store.Result{}) {
				t.Errorf("message %d: %+v, want it left for the store", i, r)
			}
			continue
		}
		code := codes[i]
		if code == "" {
			code = hearth.CodeInvalid
		}
		if r.Status != store.StatusRejected || r.Code != code || !strings.Contains(r.Error, reason) {
			t.Errorf("message %d: %+v, want rejected (%s) with a reason containing %q", i, r, code, reason)
		}
	}
}

func openTestStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "central.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// storeSync stores msgs through the sink and waits for the outcome.
func storeSync(s *Sink, msgs []hearth.Message) error {
	res := make(chan error, 1)
	s.StoreAsync(msgs, func(err error) { res <- err })
	return <-res
}

// Ensure that the sink stores known children's data, refuses unknown
// children as the protocol expects and says "retry later" when the store
// is gone.
func TestSink_Store(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	home, _, err := st.AddHome(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	kid, err := st.AddChild(ctx, home, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	msg := func(child string) hearth.Message {
		return hearth.Message{ChildHash: child, Kind: hearth.KindLocation, ReceivedAt: now, Via: hearth.ViaWS,
			Data: []byte(`{"timestamp":"` + now.Format(time.RFC3339Nano) + `","latitude":1,"longitude":2}`)}
	}
	sink, roster := NewSink(st, 1, 5*time.Second), Roster{st}
	defer sink.Close()
	if err := storeSync(sink, []hearth.Message{msg(kid)}); err != nil {
		t.Fatalf("store: %v", err)
	}
	if err := storeSync(sink, []hearth.Message{msg("nobody")}); !errors.Is(err, hearth.ErrUnknownChild) {
		t.Fatalf("unknown child: %v", err)
	}
	if ok, err := roster.Known(ctx, kid); !ok || err != nil {
		t.Fatalf("roster: %v %v", ok, err)
	}
	if ok, err := roster.Known(ctx, "nobody"); ok || err != nil {
		t.Fatalf("roster of an unknown child: %v %v", ok, err)
	}
	// A child detached from its home (its data kept) is on no roster:
	// its phone sending straight to central is refused too.
	if err := st.DetachChild(ctx, home, kid); err != nil {
		t.Fatal(err)
	}
	if ok, err := roster.Known(ctx, kid); ok || err != nil {
		t.Fatalf("roster of a detached child: %v %v", ok, err)
	}
	if err := storeSync(sink, []hearth.Message{msg(kid)}); !errors.Is(err, hearth.ErrUnknownChild) {
		t.Fatalf("detached child: %v, want hearth.ErrUnknownChild", err)
	}
	st.Close()
	if err := storeSync(sink, []hearth.Message{msg(kid)}); !errors.Is(err, hearth.ErrUnavailable) {
		t.Fatalf("closed store: %v, want hearth.ErrUnavailable", err)
	}
}

// countingStore is the real store, counting Apply calls.
type countingStore struct {
	store.Store
	applies atomic.Int64
}

func (c *countingStore) Apply(ctx context.Context, home string, msgs []hearth.Message) ([]store.Result, error) {
	c.applies.Add(1)
	return c.Store.Apply(ctx, home, msgs)
}

// Ensure that messages of many phones waiting together share transactions,
// and that a refusal reaches only the phone whose message it is.
func TestSink_GroupCommit(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: openTestStore(t)}
	home, _, err := st.AddHome(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	kid, err := st.AddChild(ctx, home, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	sink := NewSink(st, 1, 5*time.Second)
	defer sink.Close()
	const phones = 200
	errs := make([]error, phones)
	var wg sync.WaitGroup
	for i := range phones {
		child := kid
		if i == 7 {
			child = "nobody"
		}
		ts := time.Now().UTC().Add(-time.Duration(i) * time.Second)
		m := hearth.Message{ChildHash: child, Kind: hearth.KindLocation, ReceivedAt: time.Now().UTC(), Via: hearth.ViaWS,
			Data: []byte(`{"timestamp":"` + ts.Format(time.RFC3339Nano) + `","latitude":1,"longitude":2}`)}
		wg.Add(1)
		sink.StoreAsync([]hearth.Message{m}, func(err error) { errs[i] = err; wg.Done() })
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Fatalf("phone %d: %v", i, err)
		}
	}
	if !errors.Is(errs[7], hearth.ErrUnknownChild) {
		t.Fatalf("unknown child: %v", errs[7])
	}
	if n := st.applies.Load(); n >= phones {
		t.Fatalf("%d transactions for %d phones: no grouping", n, phones)
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats["locations"] != phones-1 {
		t.Fatalf("%d locations stored, want %d", stats["locations"], phones-1)
	}
	sink.Close()
	if err := storeSync(sink, []hearth.Message{{ChildHash: kid}}); !errors.Is(err, hearth.ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}

// stuckStore is a store whose Apply says it started, then waits until released.
type stuckStore struct {
	store.Store
	started, release chan struct{}
}

func (s stuckStore) Apply(ctx context.Context, home string, msgs []hearth.Message) ([]store.Result, error) {
	s.started <- struct{}{}
	<-s.release
	return make([]store.Result, len(msgs)), nil
}

// Ensure that StoreEach never blocks a session: with the queue full, a
// message is answered "unavailable" at once.
func TestSink_FullQueueAnswersAtOnce(t *testing.T) {
	st := stuckStore{Store: openTestStore(t), started: make(chan struct{}, 1), release: make(chan struct{})}
	sink := NewSink(st, 1, 5*time.Second)
	defer sink.Close()
	defer close(st.release)
	sink.StoreEach([]hearth.Message{{}}, func([]error) {})
	<-st.started
	var refused atomic.Int64
	for range queueLength + 9 {
		sink.StoreEach([]hearth.Message{{}}, func(errs []error) {
			if errors.Is(errs[0], hearth.ErrUnavailable) {
				refused.Add(1)
			}
		})
	}
	// One request is with the stuck worker, queueLength wait in the queue.
	go func() {
		for range st.started {
		}
	}()
	if got := refused.Load(); got != 9 {
		t.Fatalf("%d answered unavailable at once, want 9", got)
	}
}
