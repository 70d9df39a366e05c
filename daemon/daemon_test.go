package daemon

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

var quiet = slog.New(slog.DiscardHandler)

// fakeCentral is an httptest central: it serves the roster, stamps every
// answer with a Date offset from the local clock, stores batches (answering
// ok for each message) and can hold roster answers until released.
type fakeCentral struct {
	URL       string
	offset    time.Duration
	retention int               // retention_days in the roster answer; 0 leaves it out
	names     map[string]string // names in the roster answer

	mu       sync.Mutex
	children []string
	hold     chan struct{}
	batches  []hearth.BatchMessage
	rosterN  atomic.Int64
}

func startCentral(t *testing.T, offset time.Duration, children ...string) *fakeCentral {
	fc := &fakeCentral{offset: offset, children: children}
	srv := httptest.NewServer(http.HandlerFunc(fc.serve))
	t.Cleanup(srv.Close)
	fc.URL = srv.URL
	return fc
}

func (fc *fakeCentral) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", time.Now().Add(fc.offset).UTC().Format(http.TimeFormat))
	switch r.URL.Path {
	case hearth.PathEdgeRoster:
		fc.rosterN.Add(1)
		fc.mu.Lock()
		hold, list := fc.hold, append([]string{}, fc.children...)
		fc.mu.Unlock()
		if hold != nil {
			<-hold
		}
		json.NewEncoder(w).Encode(hearth.RosterReply{Children: list, RetentionDays: fc.retention, Names: fc.names})
	case hearth.PathEdgeBatches:
		msgs, err := decodeBatch(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fc.mu.Lock()
		fc.batches = append(fc.batches, msgs...)
		fc.mu.Unlock()
		reply := hearth.BatchReply{Results: []hearth.BatchResult{}}
		for _, m := range msgs {
			reply.Results = append(reply.Results, hearth.BatchResult{Seq: m.Seq, Status: hearth.BatchStatusOK})
		}
		json.NewEncoder(w).Encode(reply)
	default:
		http.NotFound(w, r)
	}
}

func decodeBatch(body io.Reader) ([]hearth.BatchMessage, error) {
	zr, err := gzip.NewReader(body)
	if err != nil {
		return nil, err
	}
	var b struct {
		Messages []hearth.BatchMessage `json:"messages"`
	}
	return b.Messages, json.NewDecoder(zr).Decode(&b)
}

// holdRoster makes roster requests wait until the returned func is called.
func (fc *fakeCentral) holdRoster() (release func()) {
	ch := make(chan struct{})
	fc.mu.Lock()
	fc.hold = ch
	fc.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			fc.mu.Lock()
			fc.hold = nil
			fc.mu.Unlock()
			close(ch)
		})
	}
}

func (fc *fakeCentral) received() []hearth.BatchMessage {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]hearth.BatchMessage{}, fc.batches...)
}

// startDaemon runs a hearthd on 127.0.0.1 ports and a temporary data
// directory, forwarding to centralURL unless it is empty.
func startDaemon(t *testing.T, centralURL string, edit func(*Config)) *Daemon {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.AllowVolatileDataDir = true // t.TempDir() may be on tmpfs; storage_test.go tests the refusal
	if centralURL != "" {
		cfg.CentralURL, cfg.CentralToken, cfg.EdgeID = centralURL, "tok", "test-edge"
		cfg.ForwardReplayJitter, cfg.ForwardMaxBackoff = 0, 100*time.Millisecond
	}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

// status reads GET /status from the admin listener as JSON fields.
func status(t *testing.T, d *Daemon) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + d.AdminAddr() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func target(d *Daemon) ingesttest.Target {
	return ingesttest.Target{URL: "http://" + d.Addr()}
}

// nearly reports whether got is within tol of want.
func nearly(got, want time.Time, tol time.Duration) bool {
	return got.Sub(want).Abs() <= tol
}

// Ensure that a forwarding edge takes central's clock (here 30 days ahead
// of the local one) as its reference once the first answer has come:
// before it, clock_trusted is false and only absolute bounds apply; after
// it, clock_trusted is true, the window is central's (a minute stricter)
// and new messages are stamped on central's clock.
func TestDaemon_Forwarding_ClockFromCentral(t *testing.T) {
	const ahead = 30 * 24 * time.Hour
	fc := startCentral(t, ahead, "kid")
	release := fc.holdRoster()
	t.Cleanup(release)
	d := startDaemon(t, fc.URL, nil)

	st := status(t, d)
	if st["clock_trusted"] != false || st["clock_offset_seconds"] != 0.0 {
		t.Fatalf("before any answer: clock_trusted %v, clock_offset_seconds %v", st["clock_trusted"], st["clock_offset_seconds"])
	}
	if w := d.window(); w != (hearth.Window{}) {
		t.Fatalf("window before any answer = %+v, want none", w)
	}
	if _, synced := d.ReceivedAt(); synced {
		t.Fatal("ReceivedAt synced before any answer")
	}

	release()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := status(t, d); st["clock_trusted"] != true {
			return fmt.Errorf("clock_trusted %v", st["clock_trusted"])
		}
		return nil
	})
	w := d.window()
	if want := time.Now().Add(ahead); !nearly(w.Now, want, time.Minute) {
		t.Fatalf("window Now %s, want about %s", w.Now, want)
	}
	if w.MaxAge != 365*24*time.Hour-time.Minute || w.MaxFuture != hearth.DefaultMaxFuture-time.Minute {
		t.Fatalf("window %+v: want the retention and max future less a minute", w)
	}
	if off, _ := status(t, d)["clock_offset_seconds"].(float64); (time.Duration(off*float64(time.Second)) - ahead).Abs() > time.Minute {
		t.Fatalf("clock_offset_seconds %v, want about %v", off, ahead.Seconds())
	}
	at, synced := d.ReceivedAt()
	if !synced || !nearly(at, time.Now().Add(ahead), time.Minute) || at.Location() != time.UTC {
		t.Fatalf("ReceivedAt = %s, %v; want about 30 days ahead, synced, UTC", at, synced)
	}
}

// Ensure that a message a phone sends after the clock is measured reaches
// central stamped on central's clock and marked synced.
func TestDaemon_Forwarding_MessagesStampedOnCentralClock(t *testing.T) {
	const ahead = 30 * 24 * time.Hour
	fc := startCentral(t, ahead, "kid")
	d := startDaemon(t, fc.URL, nil)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, synced := d.ReceivedAt(); !synced {
			return errors.New("clock not measured yet")
		}
		return nil
	})
	conn := ingesttest.MustDial(t, target(d), "/ws/ingest/kid/")
	conn.Expect("connection_established")
	conn.Send(ingesttest.Frame("location", ingesttest.LocationData(0)))
	conn.ExpectAck("location")
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := len(fc.received()); n != 1 {
			return fmt.Errorf("central received %d messages", n)
		}
		return nil
	})
	m := fc.received()[0]
	at, err := time.Parse(time.RFC3339Nano, m.ReceivedAt)
	if err != nil || !m.Synced || !nearly(at, time.Now().Add(ahead), time.Minute) {
		t.Fatalf("central got received_at %q (%v), synced %v; want about 30 days ahead, synced", m.ReceivedAt, err, m.Synced)
	}
}

// Ensure that the edge never judges with a longer retention than
// central's, so it never acks what central would refuse as too old.
func TestDaemon_Forwarding_CentralRetentionWins(t *testing.T) {
	fc := startCentral(t, 0, "kid")
	fc.retention = 30
	d := startDaemon(t, fc.URL, nil) // its own retention_days: 365
	testutil.WaitFor(t, 5*time.Second, func() error {
		if w := d.window(); w.MaxAge != 30*24*time.Hour-edgeMargin {
			return fmt.Errorf("window %+v, want central's 30 days less the margin", w)
		}
		return nil
	})
	conn := ingesttest.MustDial(t, target(d), "/ws/ingest/kid/")
	conn.Expect("connection_established")
	old := time.Now().Add(-40 * 24 * time.Hour).UTC().Format(time.RFC3339)
	conn.Send(ingesttest.Frame("location", `{"timestamp":"`+old+`","latitude":1,"longitude":2}`))
	conn.ExpectErrorCode("too_old")
}

// Ensure that a standalone edge keeps its documented behaviour: the wall
// clock, trusted when plausible, the retention window without a future
// bound, no clock offset in /status, and messages not marked synced.
func TestDaemon_Standalone_Clock(t *testing.T) {
	d := startDaemon(t, "", nil)
	st := status(t, d)
	if _, ok := st["clock_offset_seconds"]; ok || st["clock_trusted"] != true || st["forward_state"] != "off" {
		t.Fatalf("status %v", st)
	}
	w := d.window()
	if !nearly(w.Now, time.Now(), time.Minute) || w.MaxAge != 365*24*time.Hour || w.MaxFuture != 0 {
		t.Fatalf("window %+v", w)
	}
	if at, synced := d.ReceivedAt(); synced || !nearly(at, time.Now(), time.Minute) {
		t.Fatalf("ReceivedAt = %s, %v", at, synced)
	}
}

// Ensure that with central configured but no roster from it yet, phones
// are told to retry later on every path (nothing is acked), and are
// served once the roster arrives.
func TestDaemon_Forwarding_NoRosterRetryLater(t *testing.T) {
	fc := startCentral(t, 0, "kid")
	release := fc.holdRoster()
	t.Cleanup(release)
	d := startDaemon(t, fc.URL, nil)

	_, resp, err := ingesttest.Dial(t, target(d), "/ws/ingest/kid/")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("WebSocket upgrade without a roster: %v, %+v; want 503 with Retry-After", err, resp)
	}
	body := fmt.Sprintf(`{"child_hash":"kid","location_info":%s}`, ingesttest.LocationData(0))
	code, reply, hdr := ingesttest.Post(t, target(d), body, nil)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("POST without a roster: %d %v; want 503 with Retry-After", code, reply)
	}
	if depth := d.Outbox().Stats().Depth; depth != 0 {
		t.Fatalf("outbox depth %d: something was stored without a roster", depth)
	}

	release()
	testutil.WaitFor(t, 5*time.Second, func() error {
		c, resp, err := ingesttest.Dial(t, target(d), "/ws/ingest/kid/")
		if err != nil {
			return fmt.Errorf("dial: %v (%v)", err, resp)
		}
		c.Close()
		return nil
	})
}

// Ensure that a static children list narrows central's roster: a child
// must be on both; one missing from the static list is refused without
// asking central.
func TestDaemon_Forwarding_StaticListIntersectsCentral(t *testing.T) {
	fc := startCentral(t, 0, "kid-both", "kid-central-only")
	d := startDaemon(t, fc.URL, func(c *Config) { c.Children = []string{"kid-both", "kid-static-only"} })
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := fc.rosterN.Load(); n < 1 {
			return errors.New("roster not synced")
		}
		return nil
	})
	testutil.WaitFor(t, 5*time.Second, func() error { // the sync is applied just after the answer
		c, resp, err := ingesttest.Dial(t, target(d), "/ws/ingest/kid-both/")
		if err != nil {
			return fmt.Errorf("kid-both: %v (%v)", err, resp)
		}
		c.Close()
		return nil
	})
	before := fc.rosterN.Load()
	refused := func(hash string) {
		t.Helper()
		_, resp, err := ingesttest.Dial(t, target(d), "/ws/ingest/"+hash+"/")
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %v, %+v; want 403", hash, err, resp)
		}
	}
	refused("kid-central-only")
	if n := fc.rosterN.Load() - before; n != 0 {
		t.Errorf("a child missing from the static list fetched central's roster %d times", n)
	}
	refused("kid-static-only") // may refresh once: it is a miss on central's roster
	if n := fc.rosterN.Load() - before; n > 1 {
		t.Errorf("%d roster fetches for one miss, want at most 1", n)
	}
	if !strings.Contains(d.rosterSize().(string), "2 listed") {
		t.Errorf("start log says children %v", d.rosterSize())
	}
}

// Ensure that an edge_id that cannot travel in an HTTP header is refused
// at start rather than failing every request to central.
func TestConfig_Validate_EdgeIDInHeader(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CentralURL, cfg.CentralToken, cfg.EdgeID = "https://central:8443", "tok", "kitchen\nrouter"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "edge_id") {
		t.Fatalf("Validate = %v, want an edge_id error", err)
	}
	cfg.EdgeID = "Küche"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate(%q) = %v", cfg.EdgeID, err)
	}
}
