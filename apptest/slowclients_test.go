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

// slowHeaderAttack keeps perAddr slow-header connections coming to addr
// from each of 8 other loopback addresses (127.0.0.2-9), as the attack of
// issue 7 did: each sends half a request head and waits; a refused one
// reconnects after 250 ms. stop ends it and closes what is open.
type slowHeaderAttack struct {
	dials, refused atomic.Int64
	stop           chan struct{}
	wg             sync.WaitGroup
	mu             sync.Mutex
	open           map[net.Conn]bool
}

func startSlowHeaderAttack(addr, path string, perAddr int) *slowHeaderAttack {
	a := &slowHeaderAttack{stop: make(chan struct{}), open: map[net.Conn]bool{}}
	for host := 2; host <= 9; host++ {
		ip := net.ParseIP(fmt.Sprintf("127.0.0.%d", host))
		for range perAddr {
			a.wg.Add(1)
			go a.attacker(ip, addr, path)
		}
	}
	return a
}

func (a *slowHeaderAttack) attacker(ip net.IP, addr, path string) {
	defer a.wg.Done()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	buf := make([]byte, 256)
	for {
		if c, err := dl.Dial("tcp", addr); err == nil {
			a.mu.Lock()
			a.open[c] = true
			a.mu.Unlock()
			a.dials.Add(1)
			c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: hearth\r\n")) // never finished
			if n, _ := c.Read(buf); bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 503")) {
				a.refused.Add(1)
			}
			a.mu.Lock()
			delete(a.open, c)
			a.mu.Unlock()
			c.Close()
		}
		select { // reconnect, not in a hot loop
		case <-a.stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (a *slowHeaderAttack) end() {
	close(a.stop)
	a.mu.Lock()
	for c := range a.open {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// waitPending waits until the server at admin holds want pending
// connections after at least dials connections of the attack.
func (a *slowHeaderAttack) waitPending(t *testing.T, admin string, want, dials int) {
	t.Helper()
	pending := regexp.MustCompile(`(?m)^hearth_ingest_pending_connections (\d+)`)
	testutil.WaitFor(t, 10*time.Second, func() error {
		_, m := get(t, admin+"/metrics")
		if p := pending.FindStringSubmatch(m); p == nil || p[1] != strconv.Itoa(want) || a.dials.Load() < int64(dials) {
			return fmt.Errorf("pending %v after %d dials, want %d after %d", p, a.dials.Load(), want, dials)
		}
		return nil
	})
}

// bystander connects a phone of child from 127.0.0.1 over WebSocket and
// HTTP and fails the test unless both are acked within 3 s.
func bystander(t *testing.T, url, child string) (ws, post time.Duration) {
	t.Helper()
	start := time.Now()
	c := ingesttest.MustDial(t, ingesttest.Target{URL: url}, "/ws/ingest/"+child+"/")
	c.Expect("connection_established")
	c.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
	c.ExpectAck("location")
	ws = time.Since(start)
	start = time.Now()
	code, out, _ := ingesttest.Post(t, ingesttest.Target{URL: url}, `{"child_hash":"`+child+`","location_info":`+ingesttest.LocationData(2)+`}`, nil)
	post = time.Since(start)
	if sec, _ := out["location"].(map[string]any); code != 200 || sec["status"] != "ok" || ws > 3*time.Second || post > 3*time.Second {
		t.Fatalf("bystander during the attack: WebSocket acked after %s, HTTP %d %v after %s; want both within 3s", ws, code, out, post)
	}
	return ws, post
}

// pendingRefusals is the count of connections the server at admin
// refused or evicted for its pending caps (per address, in all, or to make
// room for an address below its fair share), which of them depends on the
// attack's timing.
func pendingRefusals(t *testing.T, admin string) int {
	t.Helper()
	_, m := get(t, admin+"/metrics")
	total := 0
	for _, reason := range []string{"pending_ip_limit", "pending_limit", "evicted"} {
		r := regexp.MustCompile(`hearth_ingest_refusals_total\{reason="` + reason + `",transport="tcp"\} (\d+)`).FindStringSubmatch(m)
		if r != nil {
			n, _ := strconv.Atoi(r[1])
			total += n
		}
	}
	if total == 0 {
		t.Fatal("no connection refused or evicted for the pending caps")
	}
	return total
}

// Ensure that a phone on another address is connected and acked within
// 3 s by the built hearthd, on its defaults, while 8 other LAN addresses
// keep over a thousand slow-header connections coming: each address is
// held to its pending cap and the rest are answered 503 + Retry-After at
// accept.
func TestHearthd_SlowHeaderAttack(t *testing.T) {
	d := StartHearthd(t, t.TempDir())
	a := startSlowHeaderAttack(strings.TrimPrefix(d.URL, "http://"), "/ws/ingest/kid/", 130)
	defer a.end()
	a.waitPending(t, d.Admin, 256, 1040)
	ws, post := bystander(t, d.URL, "bystander")
	t.Logf("attack: %d connections opened, %d answered 503; hearthd refused or evicted %d for the pending caps; bystander acked in %s (WebSocket), %s (HTTP)",
		a.dials.Load(), a.refused.Load(), pendingRefusals(t, d.Admin), ws.Round(time.Millisecond), post.Round(time.Millisecond))
}

// Ensure the same of the built hearth-central, sized for carrier NAT (256
// pending per address) with its total pending cap lowered to 1,000 so
// that 8 addresses (2,048 at their caps) fill it: every new attacker is
// refused or evicts another attacker, and a phone elsewhere is served.
func TestCentral_SlowHeaderAttack(t *testing.T) {
	db := CentralSQLite(t)
	home, _ := CentralAddHome(t, db, "bystanders")
	child := CentralAddChild(t, db, home, "")
	c := StartCentral(t, db, "--max-pending-conns", "1000")
	a := startSlowHeaderAttack(strings.TrimPrefix(c.URL, "http://"), "/api/ingest/", 300)
	defer a.end()
	a.waitPending(t, c.Admin, 1000, 2400)
	ws, post := bystander(t, c.URL, child)
	t.Logf("attack: %d connections opened, %d answered 503; central refused or evicted %d for the pending caps; bystander acked in %s (WebSocket), %s (HTTP)",
		a.dials.Load(), a.refused.Load(), pendingRefusals(t, c.Admin), ws.Round(time.Millisecond), post.Round(time.Millisecond))
}
