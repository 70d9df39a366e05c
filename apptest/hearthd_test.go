package apptest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth/ingest/ingesttest"
)

const (
	childA = "child-a-5f3c9e"
	childB = "child-b-81d2aa"
)

// Ensure that a real hearthd speaks every exchange of the seed protocol.
func TestHearthd_Conformance(t *testing.T) {
	d := StartHearthd(t, t.TempDir(), "--children", childA+","+childB)
	ingesttest.Run(t, ingesttest.Target{URL: d.URL, Known: childA, Unknown: "no-such-child"})
}

// Ensure that a hearthd without a roster accepts any child.
func TestHearthd_NoRosterAcceptsAnyChild(t *testing.T) {
	d := StartHearthd(t, t.TempDir())
	c := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/whoever-123/")
	c.Expect("connection_established")
	c.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
	c.ExpectAck("location")
}

// Ensure that /status, /healthz, /readyz and /metrics answer on the admin listener.
func TestHearthd_Admin(t *testing.T) {
	d := StartHearthd(t, t.TempDir())
	tg := ingesttest.Target{URL: d.URL}
	c := ingesttest.MustDial(t, tg, "/ws/ingest/kid-1/")
	c.Expect("connection_established")
	for i := 0; i < 3; i++ {
		c.Send(ingesttest.Frame("location", ingesttest.LocationData(i)))
		c.ExpectAck("location")
	}
	c.Send("[]")
	c.ExpectError("JSON object")
	ingesttest.Post(t, tg, `{"child_hash":"kid-1","location_info":`+ingesttest.LocationData(9)+`}`, nil)

	st := getStatus(t, d)
	if st["connections"] != 1.0 || st["outbox_depth"] != 4.0 || st["outbox_bytes"].(float64) <= 0 || st["dead_letters"] != 0.0 {
		t.Fatalf("status %v", st)
	}
	if _, ok := st["outbox_oldest_age_seconds"]; !ok {
		t.Fatalf("status lacks outbox_oldest_age_seconds: %v", st)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, d.Admin+path); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	_, metrics := get(t, d.Admin+"/metrics")
	for _, want := range []string{
		"hearth_ingest_connections 1",
		`hearth_ingest_messages_total{transport="ws",type="location"} 3`,
		`hearth_ingest_messages_total{transport="http",type="location"} 1`,
		`hearth_ingest_refusals_total{reason="malformed_frame",transport="ws"} 1`,
		`hearth_ingest_http_requests_total{code="200"} 1`,
		"hearth_outbox_pending_messages 4",
		"hearth_outbox_pending_bytes",
		"hearth_outbox_oldest_age_seconds",
		"hearth_outbox_commit_seconds_bucket",
		"hearth_ingest_reconnections_total",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// Ensure that SIGTERM answers in-flight frames, closes WebSockets with 1001
// and exits 0, with everything acked on disk.
func TestHearthd_GracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	d := StartHearthd(t, dir)
	tg := ingesttest.Target{URL: d.URL}
	c := ingesttest.MustDial(t, tg, "/ws/ingest/kid-2/")
	c.Expect("connection_established")
	const n = 30
	for i := 0; i < n; i++ {
		c.Send(fmt.Sprintf(`{"type":"location","id":%d,"data":%s}`, i, ingesttest.LocationData(i)))
	}
	acked := 0
	for acked < 5 {
		c.ExpectAck("location")
		acked++
	}
	start := time.Now()
	d.Signal(syscall.SIGTERM)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var closeErr error
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			closeErr = err
			break
		}
		var r ingesttest.Reply
		json.Unmarshal(b, &r)
		if r.Type == "ack" {
			acked++
		}
	}
	if !websocket.IsCloseError(closeErr, websocket.CloseGoingAway) {
		t.Fatalf("connection ended with %v, want close 1001", closeErr)
	}
	if err := d.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.Log())
	}
	t.Logf("%d of %d frames acked before close; shutdown took %s", acked, n, time.Since(start))
	if got := countOutbox(t, dir); got != acked {
		t.Fatalf("outbox holds %d messages, %d were acked", got, acked)
	}
}

func getStatus(t *testing.T, d *Hearthd) map[string]any {
	t.Helper()
	_, body := get(t, d.Admin+"/status")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status %q: %v", body, err)
	}
	return st
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
