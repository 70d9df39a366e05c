package apptest

import (
	"bytes"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

// Ensure that a phone on another address is connected and acked within
// 3 s by the built hearthd, on its defaults, while 8 other LAN addresses
// (127.0.0.2-9) keep over a thousand slow-header connections coming, as
// the attack of issue 7 did: each address is held to its pending cap and
// the rest are answered 503 + Retry-After at accept.
func TestHearthd_SlowHeaderAttack(t *testing.T) {
	d := StartHearthd(t, t.TempDir())
	var dials, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	addr := strings.TrimPrefix(d.URL, "http://")
	for a := 2; a <= 9; a++ {
		ip := net.ParseIP(fmt.Sprintf("127.0.0.%d", a))
		for range 130 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
				buf := make([]byte, 256)
				for {
					c, err := dl.Dial("tcp", addr)
					if err == nil {
						mu.Lock()
						open[c] = true
						mu.Unlock()
						dials.Add(1)
						c.Write([]byte("GET /ws/ingest/kid/ HTTP/1.1\r\nHost: hearth\r\n")) // never finished
						if n, _ := c.Read(buf); bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 503")) {
							refused.Add(1)
						}
						mu.Lock()
						delete(open, c)
						mu.Unlock()
						c.Close()
					}
					select { // reconnect, not in a hot loop
					case <-stop:
						return
					case <-time.After(250 * time.Millisecond):
					}
				}
			}()
		}
	}
	defer func() {
		close(stop)
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	pending := regexp.MustCompile(`(?m)^hearth_ingest_pending_connections (\d+)`)
	testutil.WaitFor(t, 10*time.Second, func() error {
		_, m := get(t, d.Admin+"/metrics")
		if p := pending.FindStringSubmatch(m); p == nil || p[1] != "256" || dials.Load() < 1040 {
			return fmt.Errorf("pending %v after %d dials, want 256 after 1040", p, dials.Load())
		}
		return nil
	})
	start := time.Now()
	c := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/bystander/")
	c.Expect("connection_established")
	c.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
	c.ExpectAck("location")
	ws := time.Since(start)
	start = time.Now()
	code, _, _ := ingesttest.Post(t, ingesttest.Target{URL: d.URL}, `{"child_hash":"bystander","location_info":`+ingesttest.LocationData(2)+`}`, nil)
	post := time.Since(start)
	if code != 200 || ws > 3*time.Second || post > 3*time.Second {
		t.Fatalf("bystander during the attack: WebSocket acked after %s, HTTP %d after %s; want both within 3s", ws, code, post)
	}
	_, m := get(t, d.Admin+"/metrics")
	perIP := regexp.MustCompile(`hearth_ingest_refusals_total\{reason="pending_ip_limit",transport="tcp"\} (\d+)`).FindStringSubmatch(m)
	if perIP == nil {
		t.Fatal("no refusals counted for the per-address pending cap")
	}
	n, _ := strconv.Atoi(perIP[1])
	t.Logf("attack: %d connections opened, %d answered 503; hearthd refused %d at the per-address cap; bystander acked in %s (WebSocket), %s (HTTP)",
		dials.Load(), refused.Load(), n, ws.Round(time.Millisecond), post.Round(time.Millisecond))
}
