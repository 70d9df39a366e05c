package apptest

import (
	"encoding/json"
	"fmt"
	"github.com/guardianai/hearth/internal/testutil"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
)

// forwardingHearthd runs hearthd forwarding to c with token, with no
// replay delay and short backoffs.
func forwardingHearthd(t *testing.T, dir string, c *Central, token string) *Hearthd {
	t.Helper()
	return StartHearthd(t, dir, "--central-url", c.URL, "--central-token", token,
		"--forward-replay-jitter", "0s", "--forward-max-backoff", "500ms", "--edge-id", "apptest-edge")
}

// statusNumber reads a number of the daemon's /status.
func statusNumber(t *testing.T, d *Hearthd, key string) float64 {
	t.Helper()
	v, _ := getStatus(t, d)[key].(float64)
	return v
}

// Ensure that messages a phone sees acked by hearthd reach central's
// tables and leave the edge's outbox.
func TestForward_PhoneToCentral(t *testing.T) {
	const n = 200
	// One phone's 200 acks come faster than the default 10 batches a second
	// per home: a 429 would show in last_forward_error, which must stay
	// empty here. Fairness has its own test.
	c := StartCentral(t, CentralSQLite(t), "--home-batch-rate", "1000", "--home-batch-burst", "1000")
	home, token := CentralAddHome(t, c.DB, "fwd")
	child := CentralAddChild(t, c.DB, home, "")
	d := forwardingHearthd(t, t.TempDir(), c, token)

	conn := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/"+child+"/")
	conn.Expect("connection_established")
	base := time.Now().Add(-time.Hour)
	for i := 0; i < n; i++ {
		ts := base.Add(time.Duration(i) * time.Millisecond).UTC().Format(time.RFC3339Nano)
		conn.Send(ingesttest.Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":51.5,"longitude":-0.12}`, ts)))
		conn.ExpectAck("location")
	}
	testutil.WaitFor(t, 15*time.Second, func() error {
		if got := CentralStats(t, c.DB)["locations"]; got != n {
			return fmt.Errorf("central holds %d locations, want %d", got, n)
		}
		if depth := statusNumber(t, d, "outbox_depth"); depth != 0 {
			return fmt.Errorf("outbox depth %v", depth)
		}
		return nil
	})
	st := getStatus(t, d)
	if st["forwarded_total"] != float64(n) || st["dead_letters"] != 0.0 || st["last_forward_error"] != "" {
		t.Fatalf("status %v", st)
	}
	if s := st["forward_state"]; s != "idle" && s != "sending" {
		t.Fatalf("forward_state %v", s)
	}
	_, metrics := get(t, d.Admin+"/metrics")
	for _, want := range []string{`hearth_forward_messages_total{result="ok"} 200`, `hearth_forward_roster_children 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Ensure that killing hearthd with SIGKILL while it forwards loses nothing:
// after a restart, central holds every message a phone saw acked, once.
func TestForward_KillWhileForwarding(t *testing.T) {
	const phones = 4
	c := StartCentral(t, CentralSQLite(t))
	home, token := CentralAddHome(t, c.DB, "fwd-kill")
	reader := CentralAddReader(t, c.DB, home)
	children := make([]string, phones)
	for i := range children {
		children[i] = CentralAddChild(t, c.DB, home, fmt.Sprintf("fwd-kill-%d", i))
	}
	dir := t.TempDir()
	acked := &ackedSet{keys: map[string]bool{}}
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond) // central keeps microseconds
	for round := 0; round < 3; round++ {
		d := forwardingHearthd(t, dir, c, token)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p, child := range children {
			start := base.Add(time.Duration(round*phones+p) * time.Minute)
			wg.Go(func() { crashPhone(d.URL, child, start, acked, stop) })
		}
		// Kill once the forwarder is busy: some messages are at central.
		testutil.WaitFor(t, 10*time.Second, func() error {
			if f := statusNumber(t, d, "forwarded_total"); f < 50 {
				return fmt.Errorf("forwarded %v", f)
			}
			return nil
		})
		d.Signal(syscall.SIGKILL)
		close(stop)
		wg.Wait()
	}
	d := forwardingHearthd(t, dir, c, token) // drains what is left
	testutil.WaitFor(t, 20*time.Second, func() error {
		if depth := statusNumber(t, d, "outbox_depth"); depth != 0 {
			return fmt.Errorf("outbox depth %v", depth)
		}
		return nil
	})

	stored := map[string]bool{}
	for _, child := range children {
		for _, ts := range centralLocations(t, c, reader, child, base.Add(-time.Minute), time.Now()) {
			stored[child+"@"+ts] = true
		}
	}
	missing := 0
	for k := range acked.keys {
		if !stored[k] {
			if missing++; missing < 10 {
				t.Errorf("acked message %s is not at central", k)
			}
		}
	}
	rows := CentralStats(t, c.DB)["locations"]
	if rows != int64(len(stored)) {
		t.Errorf("central has %d location rows but the read API shows %d", rows, len(stored))
	}
	// A message stored but whose ack the kill cut off may be there too: at
	// most the phones' pipelines (4 frames each) per kill.
	if extra := rows - int64(len(acked.keys)); extra < 0 || extra > 3*phones*4 {
		t.Errorf("central holds %d rows for %d acked messages", rows, len(acked.keys))
	}
	if dead := statusNumber(t, d, "dead_letters"); dead != 0 {
		t.Errorf("%v dead letters", dead)
	}
	t.Logf("3 kills: %d messages acked, %d rows at central, %d acked but missing", len(acked.keys), rows, missing)
}

// centralLocations returns the timestamps (RFC 3339, UTC, nanoseconds) of
// child's locations in [from, to] through central's read API.
func centralLocations(t *testing.T, c *Central, token, child string, from, to time.Time) []string {
	t.Helper()
	q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	r := c.Do(t, http.MethodGet, "/v1/children/"+child+"/locations?"+q.Encode(), token, nil, nil)
	if r.Code != 200 {
		t.Fatalf("read locations of %s: %d %s", child, r.Code, r.Body)
	}
	var body struct {
		Locations []struct {
			Timestamp time.Time `json:"timestamp"`
		} `json:"locations"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(body.Locations))
	for i, l := range body.Locations {
		out[i] = l.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return out
}
