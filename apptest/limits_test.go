package apptest

import (
	"fmt"
	"github.com/guardianai/hearth/internal/testutil"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
)

// Ensure that a full outbox refuses new data (WS error frame, HTTP 503 +
// Retry-After) and keeps every acked message.
func TestHearthd_Quota_RefusesWhenFull(t *testing.T) {
	dir := t.TempDir()
	d := StartHearthd(t, dir, "--outbox-max-messages", "25")
	tg := ingesttest.Target{URL: d.URL}
	c := ingesttest.MustDial(t, tg, "/ws/ingest/quota-kid/")
	c.Expect("connection_established")
	acked := 0
	for i := 0; i < 30; i++ {
		c.Send(ingesttest.Frame("location", ingesttest.LocationData(i)))
		r := c.Read()
		switch {
		case r.Type == "ack":
			acked++
		case r.Type == "error" && strings.Contains(r.Message, "quota"):
		default:
			t.Fatalf("frame %d: reply %+v", i, r)
		}
	}
	if acked != 25 {
		t.Fatalf("%d acked, want 25 (the quota)", acked)
	}
	code, out, hdr := ingesttest.Post(t, tg, `{"child_hash":"quota-kid","location_info":`+ingesttest.LocationData(99)+`}`, nil)
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Fatalf("HTTP when full: %d %v (Retry-After %q), want 503 with Retry-After", code, out, hdr.Get("Retry-After"))
	}
	_, metrics := get(t, d.Admin+"/metrics")
	if !strings.Contains(metrics, `hearth_ingest_refusals_total{reason="full",transport="ws"} 5`) {
		t.Errorf("metrics do not count 5 ws refusals for a full outbox")
	}
	d.Signal(syscall.SIGTERM)
	if err := d.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := countOutbox(t, dir); n != 25 {
		t.Fatalf("outbox holds %d, want the 25 acked", n)
	}
}

// Ensure that a garbage, a truncated and an empty database file each make
// hearthd move the file aside, say so, and serve on a fresh file.
func TestHearthd_Corruption_StartsFresh(t *testing.T) {
	for name, spoil := range map[string]func(path string) error{
		"garbage": func(p string) error {
			return os.WriteFile(p, []byte(strings.Repeat("not a bbolt file ", 4096)), 0o600)
		},
		// bbolt grows its file ahead of the data: cut into the pages in use.
		"truncated": func(p string) error { return os.Truncate(p, 3*4096) },
		"empty":     func(p string) error { return os.Truncate(p, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			d := StartHearthd(t, dir)
			sendLocations(t, d, "corrupt-kid", 50)
			d.Signal(syscall.SIGTERM)
			if err := d.Wait(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			if err := spoil(filepath.Join(dir, "outbox.db")); err != nil {
				t.Fatal(err)
			}
			d = StartHearthd(t, dir)
			if !strings.Contains(d.Log(), "corrupt") {
				t.Fatalf("no loud log about the corrupt file:\n%s", d.Log())
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "outbox.db.corrupt-*"))
			if len(aside) != 1 {
				t.Fatalf("aside files %v, want one", aside)
			}
			sendLocations(t, d, "corrupt-kid", 3)
		})
	}
}

func sendLocations(t *testing.T, d *Hearthd, child string, n int) {
	t.Helper()
	c := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/"+child+"/")
	c.Expect("connection_established")
	for i := 0; i < n; i++ {
		c.Send(ingesttest.Frame("location", ingesttest.LocationData(i)))
		c.ExpectAck("location")
	}
	c.Close()
}

// Ensure that WebSockets past the limits get 503 before the upgrade and the
// server keeps serving the others.
func TestHearthd_ConnectionFlood(t *testing.T) {
	d := StartHearthd(t, t.TempDir(), "--max-conns", "10", "--max-conns-per-ip", "100")
	tg := ingesttest.Target{URL: d.URL}
	var open []*ingesttest.Conn
	for i := 0; i < 10; i++ {
		c := ingesttest.MustDial(t, tg, fmt.Sprintf("/ws/ingest/flood-%d/", i))
		c.Expect("connection_established")
		open = append(open, c)
	}
	refused := 0
	for i := 0; i < 20; i++ {
		_, resp, err := ingesttest.Dial(t, tg, "/ws/ingest/flood-x/")
		if err != nil && resp != nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			refused++
		}
	}
	if refused != 20 {
		t.Fatalf("%d of 20 connections past the limit refused with 503", refused)
	}
	open[0].Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
	open[0].ExpectAck("location")
	open[1].Close()
	testutil.WaitFor(t, 5*time.Second, func() error {
		c, _, err := ingesttest.Dial(t, tg, "/ws/ingest/flood-y/")
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
}

// Ensure that per-address limits hold.
func TestHearthd_ConnectionsPerIP(t *testing.T) {
	d := StartHearthd(t, t.TempDir(), "--max-conns-per-ip", "3")
	tg := ingesttest.Target{URL: d.URL}
	for i := 0; i < 3; i++ {
		ingesttest.MustDial(t, tg, "/ws/ingest/ip-kid/").Expect("connection_established")
	}
	_, resp, err := ingesttest.Dial(t, tg, "/ws/ingest/ip-kid/")
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("fourth connection from one address: err %v resp %v, want 503", err, resp)
	}
}

// Ensure that a phone that stops answering pings is disconnected, and a
// client that never finishes its request headers is cut off.
func TestHearthd_SlowAndIdleClients(t *testing.T) {
	d := StartHearthd(t, t.TempDir(), "--idle-timeout", "1s", "--ping-interval", "300ms", "--read-timeout", "1s")
	tg := ingesttest.Target{URL: d.URL}
	c := ingesttest.MustDial(t, tg, "/ws/ingest/idle-kid/")
	_ = c // never read: the client library answers no pings
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n := getStatus(t, d)["connections"]; n != 0.0 {
			return fmt.Errorf("%v connections still open", n)
		}
		return nil
	})
	raw, err := net.Dial("tcp", strings.TrimPrefix(d.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte("GET /ws/ingest/slow/ HTTP/1.1\r\nHost: x\r\n")) // never finished
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	start := time.Now()
	for {
		if _, err := raw.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("server kept a half-sent request open for 10s")
			}
			break
		}
	}
	t.Logf("half-sent request closed after %s", time.Since(start).Round(time.Millisecond))
	// The server still serves.
	sendLocations(t, d, "idle-kid", 1)
}

// Ensure that --check-config validates and a bad setting is refused clearly.
func TestHearthd_CheckConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: nowhere\nrate_per_second: -1\n"), 0o600)
	p := StartNoWait(t, "hearthd", "--config", bad, "--check-config")
	if err := p.Wait(10 * time.Second); err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"listen", "rate_per_second"} {
		if !strings.Contains(p.Log(), want) {
			t.Errorf("error does not name %s:\n%s", want, p.Log())
		}
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(good, []byte("listen: ':9999'\noutbox_max_bytes: 10MiB\n"), 0o600)
	if err := StartNoWait(t, "hearthd", "--config", good, "--check-config").Wait(10 * time.Second); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
}
