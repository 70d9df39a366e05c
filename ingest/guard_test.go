package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// served is the deadline the issue sets for a phone outside an attack:
// connected and acked within 3 s.
const served = 3 * time.Second

// attackers are the loopback addresses slow clients come from; phones
// that are not part of the attack use 127.0.0.1 (or 127.0.0.10 for a
// carrier NAT).
var attackers = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"}

// serveGuarded runs an ingest.Server as hearthd's publicServer and Start
// set it up: guarded listener, GuardServer's read limits, a worker per
// connection being read.
func serveGuarded(t *testing.T, cfg ingest.Config, reg *prometheus.Registry) (*ingest.Server, string) {
	t.Helper()
	if cfg.Window == nil {
		cfg.Window = window
	}
	srv := ingest.New(openOutbox(t), ingest.StaticRoster{}, cfg, reg, slog.New(slog.DiscardHandler))
	hs := &fasthttp.Server{
		Handler:            srv.Handler(),
		MaxRequestBodySize: ingest.BodyReadLimit(64 << 10),
		ReadBufferSize:     2048,
		WriteTimeout:       10 * time.Second,
		IdleTimeout:        90 * time.Second,
		Concurrency:        max(cfg.MaxConns, 1000) + 256,
		ReduceMemoryUsage:  true,
		Logger:             log.New(io.Discard, "", 0),
	}
	srv.ConfigureServer(hs)
	srv.GuardServer(hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(srv.GuardListener(ln))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.ShutdownWith(ctx, hs)
	})
	return srv, "http://" + ln.Addr().String()
}

// slowHeaders is an attacker: connections from several addresses that
// never finish their request headers, each reopened as soon as the server
// closes or refuses it, as the attacker measured on the LAN did.
type slowHeaders struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	open    map[net.Conn]struct{}
	dials   atomic.Int64 // connections opened
	refused atomic.Int64 // answered 503 (at accept, or evicted)
	cut     atomic.Int64 // closed otherwise (header timeout: 408)
}

// startSlowHeaders opens perAddr connections from each address in from.
func startSlowHeaders(t *testing.T, url string, from []string, perAddr int) *slowHeaders {
	a := &slowHeaders{stop: make(chan struct{}), open: map[net.Conn]struct{}{}}
	addr := strings.TrimPrefix(url, "http://")
	for _, ip := range from {
		for range perAddr {
			a.wg.Add(1)
			go a.slot(addr, ip)
		}
	}
	t.Cleanup(a.end)
	return a
}

// slot keeps one slow connection open from ip.
func (a *slowHeaders) slot(addr, ip string) {
	defer a.wg.Done()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	buf := make([]byte, 512)
	for {
		c, err := d.Dial("tcp", addr)
		if err != nil || !a.hold(c) {
			if err == nil {
				c.Close()
			}
			if !a.pause() {
				return
			}
			continue
		}
		a.dials.Add(1)
		c.Write([]byte("GET /ws/ingest/kid/ HTTP/1.1\r\nHost: hearth\r\nUser-Agent: slow\r\n")) // never finished
		n, _ := c.Read(buf)                                                                     // until the server answers or closes
		a.release(c)
		if bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 503")) {
			a.refused.Add(1)
		} else {
			a.cut.Add(1)
		}
		if !a.pause() { // reconnect at once, but not in a hot loop
			return
		}
	}
}

// pause waits a moment before reconnecting; false once the attack ends.
func (a *slowHeaders) pause() bool {
	select {
	case <-a.stop:
		return false
	case <-time.After(250 * time.Millisecond):
		return true
	}
}

func (a *slowHeaders) hold(c net.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.stop:
		return false
	default:
	}
	a.open[c] = struct{}{}
	return true
}

func (a *slowHeaders) release(c net.Conn) {
	a.mu.Lock()
	delete(a.open, c)
	a.mu.Unlock()
	c.Close()
}

// end stops the attack and closes its connections.
func (a *slowHeaders) end() {
	a.mu.Lock()
	select {
	case <-a.stop:
		a.mu.Unlock()
		return
	default:
	}
	close(a.stop)
	for c := range a.open {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

// phoneWS connects a phone from 127.0.0.1, sends a location and returns
// how long it took to be acked.
func phoneWS(t *testing.T, url, child string) time.Duration {
	t.Helper()
	start := time.Now()
	c := ingesttest.MustDial(t, ingesttest.Target{URL: url}, "/ws/ingest/"+child+"/")
	c.Expect("connection_established")
	c.Send(ingesttest.Frame("location", ingesttest.LocationData(1)))
	c.ExpectAck("location")
	c.Close()
	return time.Since(start)
}

// phonePost posts a location from ip and returns the status and how long
// the answer took.
func phonePost(url, ip, child string) (int, time.Duration, error) {
	start := time.Now()
	body := `{"child_hash":"` + child + `","location_info":` + ingesttest.LocationData(2) + `}`
	resp, err := clientFrom(ip).Post(url+"/api/ingest/", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// dialFrom opens a WebSocket from ip.
func dialFrom(url, path, ip string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDial: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).Dial}
	return d.Dial("ws"+strings.TrimPrefix(url, "http")+path, nil)
}

func readReply(t *testing.T, c *websocket.Conn) ingesttest.Reply {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var r ingesttest.Reply
	if err := c.ReadJSON(&r); err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return r
}

// refusals returns hearth_ingest_refusals_total{reason,transport}.
func refusals(t *testing.T, g prometheus.Gatherer, reason, transport string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hearth_ingest_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["reason"] == reason && labels["transport"] == transport {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Ensure that on hearthd's defaults a phone from another address is
// connected and acked within 3 s while 8 other addresses keep over a
// thousand slow-header connections coming: each address is held to its
// pending cap (the rest are refused 503 at accept) and the bystander takes
// a place from the largest holder when the global cap is full.
func TestGuard_SlowHeaderAttack_Hearthd(t *testing.T) {
	reg := prometheus.NewRegistry()
	lim := ingest.DefaultLimits()
	srv, url := serveGuarded(t, lim.Config(), reg)
	attack := startSlowHeaders(t, url, attackers, 130)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if p, d := srv.Pending(), attack.dials.Load(); p < 256 || d < 1040 {
			return fmt.Errorf("attack holds %d pending connections after %d dials, want the cap of 256 after 1040", p, d)
		}
		return nil
	})
	ws := phoneWS(t, url, "bystander")
	code, post, err := phonePost(url, "127.0.0.1", "bystander")
	if err != nil || code != 200 {
		t.Fatalf("bystander's HTTP post during the attack: %d %v", code, err)
	}
	if ws > served || post > served {
		t.Fatalf("bystander acked after %s (WebSocket) and %s (HTTP), want within %s", ws, post, served)
	}
	perIP := refusals(t, reg, ingest.ReasonPendingIPLimit, "tcp")
	if perIP == 0 || srv.Pending() > 256 {
		t.Fatalf("%v connections refused by the per-address cap, %d pending; want refusals and at most 256", perIP, srv.Pending())
	}
	t.Logf("attack: %d connections opened from %d addresses, %d refused 503, %d cut by the header timeout; server pending %d; "+
		"bystander acked in %s (WebSocket), %s (HTTP); refusals pending_ip_limit=%v pending_limit=%v evicted=%v",
		attack.dials.Load(), len(attackers), attack.refused.Load(), attack.cut.Load(), srv.Pending(),
		ws.Round(time.Millisecond), post.Round(time.Millisecond), perIP,
		refusals(t, reg, ingest.ReasonPendingLimit, "tcp"), refusals(t, reg, ingest.ReasonEvicted, "tcp"))
}

// Ensure the same for hearth-central's sizing (256 per address for a
// carrier NAT; max_conns scaled down from 10000 to 2000 so that the
// global pending cap, 500, is reached): the attackers' addresses are held
// to their fair share, and 40 phones behind one carrier-NAT address plus
// a bystander are all acked within 3 s.
func TestGuard_SlowHeaderAttack_Central(t *testing.T) {
	reg := prometheus.NewRegistry()
	lim := ingest.DefaultLimits() // as central/config.go DefaultConfig sets them:
	lim.MaxConns, lim.MaxConnsPerIP, lim.ReadTimeout = 2000, 256, 30*time.Second
	srv, url := serveGuarded(t, lim.Config(), reg)
	attack := startSlowHeaders(t, url, attackers, 130)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if p, r := srv.Pending(), refusals(t, reg, ingest.ReasonPendingLimit, "tcp"); p < 490 || r == 0 {
			return fmt.Errorf("attack holds %d pending connections, %v refused by the global cap; want about 500 and refusals", p, r)
		}
		return nil
	})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, took, err := phonePost(url, "127.0.0.10", fmt.Sprintf("nat-%d", i)); err != nil || code != 200 || took > served {
				errs <- fmt.Errorf("phone %d behind the NAT: %d after %s, %v", i, code, took, err)
			}
		}()
	}
	ws := phoneWS(t, url, "bystander")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ws > served {
		t.Fatalf("bystander acked after %s, want within %s", ws, served)
	}
	t.Logf("attack: %d connections opened from %d addresses, %d refused 503; server pending %d; 40 NAT phones served in %s, bystander in %s; "+
		"refusals pending_limit=%v evicted=%v", attack.dials.Load(), len(attackers), attack.refused.Load(), srv.Pending(),
		time.Since(start).Round(time.Millisecond), ws.Round(time.Millisecond),
		refusals(t, reg, ingest.ReasonPendingLimit, "tcp"), refusals(t, reg, ingest.ReasonEvicted, "tcp"))
}

// Ensure that a connection evicted to make room is answered 503 with
// Retry-After (counted once, as evicted), and the phone that took its
// place is served.
func TestGuard_EvictedRequestGets503(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, url := serveGuarded(t, ingest.Config{MaxPending: 2, MaxPendingPerIP: 2}, reg)
	addr := strings.TrimPrefix(url, "http://")
	var slow []net.Conn
	for i := range 2 {
		c := dialRaw(t, addr, "127.0.0.2")
		io.WriteString(c, "GET /ws/ingest/kid/ HTTP/1.1\r\nHost: x\r\n")
		slow = append(slow, c)
		testutil.WaitFor(t, 5*time.Second, func() error { // admitted in this order
			if p := srv.Pending(); p != i+1 {
				return fmt.Errorf("%d pending, want %d", p, i+1)
			}
			return nil
		})
	}
	if code, _, err := phonePost(url, "127.0.0.3", "kid"); err != nil || code != 200 {
		t.Fatalf("phone from another address: %d %v", code, err)
	}
	resp := readHTTP(t, slow[0])
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" || !strings.Contains(resp.body, "make room") {
		t.Fatalf("evicted connection: %d Retry-After %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.body)
	}
	if got := refusals(t, reg, ingest.ReasonEvicted, "tcp"); got != 1 {
		t.Fatalf("evictions counted %v, want 1", got)
	}
}

// Ensure that an unauthenticated auth-flow WebSocket counts against its
// address's pending cap until it authenticates, that a dial past the cap
// is refused 503 + Retry-After before the upgrade, and that an evicted
// unauthenticated WebSocket is told retry_later and closed with 1013.
func TestGuard_AuthFlowIsPending(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, url := serveGuarded(t, ingest.Config{MaxPending: 1, MaxPendingPerIP: 1}, reg)
	c, _, err := dialFrom(url, ingest.PathAuth, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := readReply(t, c); r.Type != "auth_required" {
		t.Fatalf("first frame %+v", r)
	}
	_, resp, err := dialFrom(url, "/ws/ingest/kid/", "127.0.0.2")
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second connection from an address at its pending cap: %v %v, want 503 with Retry-After", err, resp)
	}
	if got := refusals(t, reg, ingest.ReasonPendingIPLimit, "tcp"); got != 1 {
		t.Fatalf("pending_ip_limit refusals %v, want 1", got)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"auth","child_hash":"kid"}`))
	if r := readReply(t, c); r.Type != "auth_success" {
		t.Fatalf("auth: %+v", r)
	}
	c2, _, err := dialFrom(url, ingest.PathAuth, "127.0.0.2") // the first no longer counts
	if err != nil {
		t.Fatalf("dial after the first authenticated: %v", err)
	}
	defer c2.Close()
	readReply(t, c2)
	c3, _, err := dialFrom(url, "/ws/ingest/kid/", "127.0.0.3") // the global cap of 1 is full: c2 makes room
	if err != nil {
		t.Fatalf("dial from another address: %v", err)
	}
	defer c3.Close()
	if r := readReply(t, c2); r.Type != "error" || r.Code != "retry_later" || r.RetryAfter == 0 {
		t.Fatalf("evicted unauthenticated WebSocket: %+v, want retry_later", r)
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c2.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
		t.Fatalf("evicted WebSocket closed with %v, want 1013", err)
	}
}

// Ensure that before authenticating, a frame above 4 KiB is answered
// not_authenticated without being buffered, and the connection stays
// usable.
func TestServer_PreAuthFrameLimit(t *testing.T) {
	_, url := serve(t, openOutbox(t), ingest.StaticRoster{}, ingest.Config{Window: window})
	c := ingesttest.MustDial(t, ingesttest.Target{URL: url}, ingest.PathAuth)
	c.Expect("auth_required")
	c.Send(`{"type":"location","pad":"` + strings.Repeat("x", 5<<10) + `"}`)
	if r := c.ExpectErrorCode("not_authenticated"); !strings.Contains(r.Message, "4096 bytes") {
		t.Fatalf("large frame before auth: %+v", r)
	}
	c.Send(`{"type":"auth","child_hash":"kid"}`)
	c.Expect("auth_success")
	c.Send(`{"type":"location","data":` + ingesttest.LocationData(1) + `,"pad":"` + strings.Repeat("x", 5<<10) + `"}`)
	c.ExpectAck("location")
}

// Ensure that a phone on a poor link, sending a 64 KiB body at about
// 2 KiB/s (32 s, three times the old read timeout), is served on
// hearthd's defaults.
func TestGuard_SlowLegalBody(t *testing.T) {
	t.Parallel()
	lim := ingest.DefaultLimits()
	_, url := serveGuarded(t, lim.Config(), prometheus.NewRegistry())
	c := dialRaw(t, strings.TrimPrefix(url, "http://"), "127.0.0.2")
	body := paddedBody(64 << 10)
	fmt.Fprintf(c, "POST /api/ingest/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	for sent := 0; sent < len(body); sent += 256 {
		time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / 2048))) // the phone's pace: 2 KiB/s
		if _, err := c.Write(body[sent:min(sent+256, len(body))]); err != nil {
			t.Fatalf("server cut a 2 KiB/s body after %d bytes: %v", sent, err)
		}
	}
	if resp := readHTTP(t, c); resp.StatusCode != 200 || !strings.Contains(resp.body, `"location":{"status":"ok"`) {
		t.Fatalf("slow body after %s: %d %s", time.Since(start).Round(time.Second), resp.StatusCode, resp.body)
	}
}

// Ensure that a body arriving below the minimum rate is cut once the
// grace has passed: 408 with the reason, counted as too_slow.
func TestGuard_BodyBelowFloorCut(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, url := serveGuarded(t, ingest.Config{HeaderTimeout: time.Second, BodyGrace: 100 * time.Millisecond, MinBodyRate: 1024}, reg)
	c := dialRaw(t, strings.TrimPrefix(url, "http://"), "127.0.0.2")
	body := paddedBody(16 << 10)
	fmt.Fprintf(c, "POST /api/ingest/ HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
	answered := make(chan httpAnswer, 1)
	go func() { answered <- readHTTP(t, c) }()
	var resp httpAnswer
	for sent := 0; sent < len(body); sent += 64 { // 256 B/s, a quarter of the floor
		select {
		case resp = <-answered:
		case <-time.After(250 * time.Millisecond):
			c.Write(body[sent : sent+64])
			continue
		}
		break
	}
	if resp.StatusCode != 408 || !strings.Contains(resp.body, "slower than 1024 bytes per second") {
		t.Fatalf("body below the floor: %d %q, want 408 naming the rate", resp.StatusCode, resp.body)
	}
	if got := refusals(t, reg, ingest.ReasonTooSlow, "http"); got != 1 {
		t.Fatalf("too_slow refusals %v, want 1", got)
	}
}

// Ensure that headers not received within header_timeout get 408 with the
// reason, counted as timeout.
func TestGuard_HeaderTimeout(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, url := serveGuarded(t, ingest.Config{HeaderTimeout: 500 * time.Millisecond}, reg)
	c := dialRaw(t, strings.TrimPrefix(url, "http://"), "127.0.0.2")
	io.WriteString(c, "GET /ws/ingest/kid/ HTTP/1.1\r\nHost: x\r\n")
	if resp := readHTTP(t, c); resp.StatusCode != 408 || !strings.Contains(resp.body, "headers within 500ms") {
		t.Fatalf("half-sent headers: %d %q, want 408", resp.StatusCode, resp.body)
	}
	if got := refusals(t, reg, ingest.ReasonTimeout, "http"); got != 1 {
		t.Fatalf("timeout refusals %v, want 1", got)
	}
}

// paddedBody is a valid HTTP fallback body of exactly n bytes.
func paddedBody(n int) []byte {
	head := `{"child_hash":"slow-kid","location_info":` + ingesttest.LocationData(3) + `,"pad":"`
	return []byte(head + strings.Repeat("x", n-len(head)-2) + `"}`)
}

func dialRaw(t *testing.T, addr, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type httpAnswer struct {
	*http.Response
	body string
}

// readHTTP reads one HTTP answer from c.
func readHTTP(t *testing.T, c net.Conn) httpAnswer {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return httpAnswer{Response: &http.Response{StatusCode: -1}, body: err.Error()}
	}
	b, _ := io.ReadAll(resp.Body)
	return httpAnswer{Response: resp, body: string(b)}
}
