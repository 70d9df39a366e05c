package forwarder

import (
	"context"
	"errors"
	"fmt"
	"github.com/guardianai/hearth/internal/testutil"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/outbox"
	"github.com/prometheus/client_golang/prometheus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testCentral is a real hearth-central on SQLite in a temporary directory,
// with one home and one child. Stop and Restart keep the database and the
// address.
type testCentral struct {
	t     *testing.T
	cfg   central.Config
	srv   *central.Server
	URL   string
	Token string
	Child string
	stats store.Store // a second handle on the same database, for counting rows
}

func startCentral(t *testing.T, edit func(*central.Config)) *testCentral {
	t.Helper()
	cfg := central.DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	if edit != nil {
		edit(&cfg)
	}
	ctx := context.Background()
	st, err := store.OpenWith(ctx, cfg.DSN(), central.StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	home, token, err := st.AddHome(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	child, err := st.AddChild(ctx, home, "")
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCentral{t: t, cfg: cfg, Token: token, Child: child, stats: st}
	t.Cleanup(func() { st.Close() })
	tc.start()
	tc.cfg.Listen = tc.srv.Addr() // a restart comes back on the same address
	tc.URL = "http://" + tc.srv.Addr()
	return tc
}

func (tc *testCentral) start() {
	tc.t.Helper()
	st, err := store.OpenWith(context.Background(), tc.cfg.DSN(), central.StoreOptions(tc.cfg))
	if err != nil {
		tc.t.Fatal(err)
	}
	srv, err := central.New(tc.cfg, st, quiet)
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		tc.t.Fatal(err)
	}
	tc.srv = srv
	tc.t.Cleanup(func() { srv.Shutdown(context.Background()) })
	// Shutdown right after Start can miss the listener while fasthttp's
	// Serve goroutine has not started yet: wait until central answers.
	testutil.WaitFor(tc.t, 5*time.Second, func() error {
		resp, err := http.Get("http://" + srv.Addr() + "/v1/edge/roster")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// Stop shuts central down; Restart starts a new one on the same database.
func (tc *testCentral) Stop()    { tc.srv.Shutdown(context.Background()) }
func (tc *testCentral) Restart() { tc.start() }

// Locations is the number of location rows central holds.
func (tc *testCentral) Locations() int64 {
	tc.t.Helper()
	st, err := tc.stats.Stats(context.Background())
	if err != nil {
		tc.t.Fatal(err)
	}
	return st["locations"]
}

// openOutbox opens a fresh outbox file in a temporary directory.
func openOutbox(t *testing.T) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{Logger: quiet, SettleDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

// location is a valid location message of child, unique per i.
func location(child string, i int) hearth.Message {
	ts := time.Now().Add(-time.Hour + time.Duration(i)*time.Millisecond).UTC().Format(time.RFC3339Nano)
	return hearth.Message{ChildHash: child, Kind: hearth.KindLocation, ReceivedAt: time.Now(), Via: "ws",
		Data: []byte(fmt.Sprintf(`{"timestamp":%q,"latitude":51.5,"longitude":-0.12}`, ts))}
}

func appendMsgs(t *testing.T, ob *outbox.Outbox, msgs ...hearth.Message) {
	t.Helper()
	if _, err := ob.Append(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

func locations(child string, from, n int) []hearth.Message {
	out := make([]hearth.Message, n)
	for i := range out {
		out[i] = location(child, from+i)
	}
	return out
}

// testForwarder is a running Forwarder with fast retries and its registry.
type testForwarder struct {
	*Forwarder
	reg *prometheus.Registry
}

// runForwarder starts a Forwarder on ob; it is stopped before ob closes.
func runForwarder(t *testing.T, ob *outbox.Outbox, url, token string, roster *Roster, edit func(*Config)) *testForwarder {
	t.Helper()
	cfg := Config{URL: url, Token: token, EdgeID: "test-edge", BaseBackoff: 10 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, Poll: 10 * time.Millisecond, Timeout: 5 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	reg := prometheus.NewRegistry()
	f, err := New(cfg, ob, roster, reg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testForwarder{Forwarder: f, reg: reg}
}

// metric returns the value of series name (with label result=result when
// result is not empty) in the forwarder's registry.
// expectMetric waits for a metric to satisfy ok: the forwarder counts an
// outcome just after the outbox shows it.
func (tf *testForwarder) expectMetric(t *testing.T, name, result string, ok func(float64) bool) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if v := tf.metric(t, name, result); !ok(v) {
			return fmt.Errorf("%s{%s} = %v", name, result, v)
		}
		return nil
	})
}

func (tf *testForwarder) metric(t *testing.T, name, result string) float64 {
	t.Helper()
	mfs, err := tf.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != result) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s{result=%q}", name, result)
	return 0
}

// delivered is a condition: the outbox is empty and central holds n locations.
func delivered(ob *outbox.Outbox, tc *testCentral, n int64) func() error {
	return func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("outbox depth %d", d)
		}
		if got := tc.Locations(); got != n {
			return fmt.Errorf("central holds %d locations, want %d", got, n)
		}
		return nil
	}
}

// Ensure that messages flow to central and are deleted from the outbox once stored.
func TestForwarder_Run_DeliversAndDeletes(t *testing.T) {
	tc := startCentral(t, nil)
	ob := openOutbox(t)
	appendMsgs(t, ob, locations(tc.Child, 0, 120)...)
	f := runForwarder(t, ob, tc.URL, tc.Token, nil, func(c *Config) { c.BatchMessages = 50 })
	testutil.WaitFor(t, 5*time.Second, delivered(ob, tc, 120))

	// New data while idle is flushed promptly.
	appendMsgs(t, ob, locations(tc.Child, 1000, 3)...)
	testutil.WaitFor(t, 2*time.Second, delivered(ob, tc, 123))
	testutil.WaitFor(t, time.Second, func() error {
		if s := f.Status(); s.State != StateIdle || s.ForwardedTotal != 123 || s.LastError != "" {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	f.expectMetric(t, "hearth_forward_messages_total", "ok", func(v float64) bool { return v == 123 })
	// 120 in batches of 50, then 3.
	f.expectMetric(t, "hearth_forward_batches_total", "ok", func(v float64) bool { return v >= 4 })
	f.expectMetric(t, "hearth_forward_last_success_timestamp_seconds", "", func(v float64) bool { return v > 0 })
}

// Ensure that a message central rejects for good goes to the dead letters
// with central's reason and does not block the ones behind it.
func TestForwarder_Run_RejectedGoesToDeadLetters(t *testing.T) {
	tc := startCentral(t, nil)
	ob := openOutbox(t)
	appendMsgs(t, ob, location(tc.Child, 0), location("no-such-child", 1), location(tc.Child, 2))
	f := runForwarder(t, ob, tc.URL, tc.Token, nil, nil)
	testutil.WaitFor(t, 5*time.Second, delivered(ob, tc, 2))
	dead := waitDead(t, ob, 1)
	if len(dead) != 1 || dead[0].Msg.ChildHash != "no-such-child" || !strings.Contains(dead[0].Reason, "unknown child") {
		t.Fatalf("dead letters %+v", dead)
	}
	f.expectMetric(t, "hearth_forward_messages_total", "rejected", func(v float64) bool { return v == 1 })
	f.expectMetric(t, "hearth_forward_batches_total", "rejected", func(v float64) bool { return v == 1 })
}

// Ensure that while central is down the backlog stays and is retried, and
// is delivered once a new central runs on the same database.
func TestForwarder_Run_CentralDownKeepsBacklog(t *testing.T) {
	tc := startCentral(t, nil)
	tc.Stop()
	ob := openOutbox(t)
	appendMsgs(t, ob, locations(tc.Child, 0, 20)...)
	f := runForwarder(t, ob, tc.URL, tc.Token, nil, nil)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := f.metric(t, "hearth_forward_batches_total", "retry"); n < 3 {
			return fmt.Errorf("%v retries", n)
		}
		return nil
	})
	if d := ob.Stats().Depth; d != 20 {
		t.Fatalf("outbox depth %d while central is down, want 20", d)
	}
	if s := f.Status(); s.LastError == "" || s.ForwardedTotal != 0 {
		t.Fatalf("status %+v", s)
	}
	tc.Restart()
	testutil.WaitFor(t, 5*time.Second, delivered(ob, tc, 20))
	if dead := ob.Stats().DeadLetters; dead != 0 {
		t.Fatalf("%d dead letters", dead)
	}
}

// Ensure that a batch refused as too large is split down to what central
// takes, and that a single message central will never take goes to the
// dead letters instead of blocking the queue.
func TestForwarder_Run_SplitsOn413(t *testing.T) {
	tc := startCentral(t, func(c *central.Config) {
		c.MaxBatchMessages = 3
		c.MaxBatchBytes, c.MaxBatchDecompressedBytes = 1024, 1024
	})
	ob := openOutbox(t)
	big := location(tc.Child, 100)
	big.Kind = hearth.KindSiteAccess
	big.Data = []byte(`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com/` + strings.Repeat("a", 2000) + `","accessed":true}]}`)
	appendMsgs(t, ob, locations(tc.Child, 0, 5)...)
	appendMsgs(t, ob, big)
	appendMsgs(t, ob, locations(tc.Child, 5, 5)...)
	f := runForwarder(t, ob, tc.URL, tc.Token, nil, nil)
	testutil.WaitFor(t, 5*time.Second, delivered(ob, tc, 10))
	dead := waitDead(t, ob, 1)
	if len(dead) != 1 || dead[0].Msg.Kind != hearth.KindSiteAccess || !strings.HasPrefix(dead[0].Reason, "too large for central") {
		t.Fatalf("dead letters %+v", dead)
	}
	if n := f.metric(t, "hearth_forward_batches_total", "split"); n < 2 {
		t.Errorf("batches split = %v, want at least 2", n)
	}
}

// Ensure that a token central refuses stops forwarding without dropping
// anything, and shows as state "unauthorized".
func TestForwarder_Run_UnauthorizedDropsNothing(t *testing.T) {
	tc := startCentral(t, nil)
	ob := openOutbox(t)
	appendMsgs(t, ob, locations(tc.Child, 0, 5)...)
	f := runForwarder(t, ob, tc.URL, "wrong-token", nil, func(c *Config) { c.MaxBackoff = time.Hour })
	testutil.WaitFor(t, 5*time.Second, func() error {
		if s := f.Status(); s.State != StateUnauthorized {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
	st := ob.Stats()
	if st.Depth != 5 || st.DeadLetters != 0 || tc.Locations() != 0 {
		t.Fatalf("outbox %+v, central %d locations", st, tc.Locations())
	}
	if f.metric(t, "hearth_forward_unauthorized", "") != 1 || f.metric(t, "hearth_forward_batches_total", "unauthorized") != 1 {
		t.Error("unauthorized not counted")
	}
	if !strings.Contains(f.Status().LastError, "401") {
		t.Errorf("last error %q", f.Status().LastError)
	}
}

// fakeCentral answers batches with the answers given, in turn (the last
// one repeats), and records when each batch arrived and its seqs.
type fakeCentral struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter, seqs []uint64)
	times   []time.Time
	seqs    [][]uint64
}

func (fc *fakeCentral) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := central.DecodeBatch(mustRead(r.Body), r.Header.Get("Content-Encoding"), central.BatchLimits{MaxDecompressed: 1 << 20, MaxMessages: 1000})
		if err != nil || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("bad batch: %v (authorization %q)", err, r.Header.Get("Authorization"))
			w.WriteHeader(400)
			return
		}
		var seqs []uint64
		for _, m := range b.Messages {
			seqs = append(seqs, m.Seq)
		}
		fc.mu.Lock()
		i := min(len(fc.times), len(fc.answers)-1)
		fc.times, fc.seqs = append(fc.times, time.Now()), append(fc.seqs, seqs)
		answer := fc.answers[i]
		fc.mu.Unlock()
		answer(w, seqs)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (fc *fakeCentral) calls() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.times)
}

func mustRead(r io.Reader) []byte {
	b, _ := io.ReadAll(r)
	return b
}

// allOK answers "ok" for every seq.
func allOK(w http.ResponseWriter, seqs []uint64) {
	var parts []string
	for _, s := range seqs {
		parts = append(parts, fmt.Sprintf(`{"seq":%d,"status":"ok"}`, s))
	}
	fmt.Fprintf(w, `{"results":[%s]}`, strings.Join(parts, ","))
}

func status(code int, retryAfter string) func(http.ResponseWriter, []uint64) {
	return func(w http.ResponseWriter, _ []uint64) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		fmt.Fprint(w, `{"error":"try later"}`)
	}
}

// Ensure that 429's Retry-After is waited for even when the backoff is
// shorter, and that being paced by central is not reported as an error.
func TestForwarder_Run_HonoursRetryAfter(t *testing.T) {
	fc := &fakeCentral{answers: []func(http.ResponseWriter, []uint64){status(429, "1"), allOK}}
	ob := openOutbox(t)
	appendMsgs(t, ob, locations("kid", 0, 3)...)
	f := runForwarder(t, ob, fc.serve(t), "tok", nil, nil)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("depth %d", d)
		}
		return nil
	})
	fc.mu.Lock()
	gap := fc.times[1].Sub(fc.times[0])
	fc.mu.Unlock()
	if gap < time.Second {
		t.Fatalf("retried after %s despite Retry-After: 1", gap)
	}
	f.expectMetric(t, "hearth_forward_batches_total", "throttled", func(v float64) bool { return v == 1 })
	if st := f.Status(); st.LastError != "" {
		t.Fatalf("last error %q after central paced the edge", st.LastError)
	}
}

// Ensure that a 200 answer lacking results for some messages (or with
// results for seqs not sent, or not JSON at all) keeps those messages and
// sends them again; nothing is dead-lettered.
func TestForwarder_Run_MalformedResultsKeepMessages(t *testing.T) {
	partial := func(w http.ResponseWriter, seqs []uint64) {
		// Only the first seq answered, plus one for a seq never sent.
		fmt.Fprintf(w, `{"results":[{"seq":%d,"status":"ok"},{"seq":999999,"status":"ok"},{"seq":%d,"status":"maybe"}]}`, seqs[0], seqs[1])
	}
	notJSON := func(w http.ResponseWriter, _ []uint64) { fmt.Fprint(w, `<html>proxy says hi</html>`) }
	fc := &fakeCentral{answers: []func(http.ResponseWriter, []uint64){partial, notJSON, status(400, ""), allOK}}
	ob := openOutbox(t)
	appendMsgs(t, ob, locations("kid", 0, 4)...)
	f := runForwarder(t, ob, fc.serve(t), "tok", nil, nil)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("depth %d", d)
		}
		return nil
	})
	fc.mu.Lock()
	defer fc.mu.Unlock()
	want := [][]uint64{{1, 2, 3, 4}, {2, 3, 4}, {2, 3, 4}, {2, 3, 4}}
	if fmt.Sprint(fc.seqs) != fmt.Sprint(want) {
		t.Fatalf("batches sent %v, want %v", fc.seqs, want)
	}
	if ob.Stats().DeadLetters != 0 {
		t.Fatal("messages dead-lettered")
	}
	f.expectMetric(t, "hearth_forward_batches_total", "retry", func(v float64) bool { return v == 1 })
	f.expectMetric(t, "hearth_forward_batches_total", "error", func(v float64) bool { return v == 1 })
	f.expectMetric(t, "hearth_forward_batches_total", "refused", func(v float64) bool { return v == 1 })
	f.expectMetric(t, "hearth_forward_messages_total", "ok", func(v float64) bool { return v == 4 })
}

// Ensure that the roster is synced from central, cached in its file, and
// read back from the cache by a restarted edge that cannot reach central.
func TestRoster_SyncAndCache(t *testing.T) {
	tc := startCentral(t, nil)
	path := filepath.Join(t.TempDir(), "roster.json")
	r := OpenRoster(path, quiet)
	ctx := context.Background()
	if ok, err := r.Known(ctx, "anyone"); ok || !errors.Is(err, hearth.ErrUnavailable) {
		t.Fatalf("a roster never synced answers %v, %v; want ErrUnavailable", ok, err)
	}
	f := runForwarder(t, openOutbox(t), tc.URL, tc.Token, r, nil)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if r.Size() != 1 {
			return fmt.Errorf("roster has %d children", r.Size())
		}
		return nil
	})
	if ok, _ := r.Known(ctx, tc.Child); !ok {
		t.Error("the home's child is refused")
	}
	if ok, _ := r.Known(ctx, "anyone"); ok {
		t.Error("a stranger is accepted after the sync")
	}
	if f.metric(t, "hearth_forward_roster_children", "") != 1 {
		t.Error("roster size metric not set")
	}
	tc.Stop()
	cached := OpenRoster(path, quiet)
	if ok, _ := cached.Known(ctx, tc.Child); !ok || cached.Size() != 1 {
		t.Error("the cached roster lost the child")
	}
	if ok, _ := cached.Known(ctx, "anyone"); ok {
		t.Error("the cached roster accepts a stranger")
	}
}

// Ensure that the forwarder gives up a request in flight when stopped.
func TestForwarder_Run_StopsWhileCentralHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and never answer
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ob := openOutbox(t)
	appendMsgs(t, ob, locations("kid", 0, 2)...)
	f, err := New(Config{URL: "http://" + ln.Addr().String(), Token: "tok", Timeout: time.Minute}, ob, nil, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	testutil.WaitFor(t, 2*time.Second, func() error {
		if f.Status().State != StateSending {
			return fmt.Errorf("state %s", f.Status().State)
		}
		return nil
	})
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if d := ob.Stats().Depth; d != 2 {
		t.Fatalf("depth %d after an abandoned send, want 2", d)
	}
}

// waitDead waits until n dead letters are committed (the forwarder queues
// their moves: they settle after the outbox's SettleDelay) and returns them.
func waitDead(t *testing.T, ob *outbox.Outbox, n int) []outbox.DeadLetter {
	t.Helper()
	var dead []outbox.DeadLetter
	testutil.WaitFor(t, 5*time.Second, func() error {
		var err error
		if dead, err = ob.DeadLetters(10); err != nil || len(dead) < n {
			return fmt.Errorf("%d dead letters (%v)", len(dead), err)
		}
		return nil
	})
	return dead
}
