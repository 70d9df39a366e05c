package netguard

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// harness is a guarded listener on 127.0.0.1:0 whose admitted connections
// the test takes one by one.
type harness struct {
	t        *testing.T
	g        *Guard
	addr     string
	accepted chan *Conn

	mu      sync.Mutex
	refused map[string]int
}

func newHarness(t *testing.T, lim Limits) *harness {
	t.Helper()
	return newHarnessOn(t, lim, (*Guard).Listen)
}

// newHarnessOn is newHarness wrapping the listener with listen.
func newHarnessOn(t *testing.T, lim Limits, listen func(*Guard, net.Listener) net.Listener) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, addr: ln.Addr().String(), accepted: make(chan *Conn, 64), refused: map[string]int{}}
	h.g = New(lim, func(reason string) {
		h.mu.Lock()
		h.refused[reason]++
		h.mu.Unlock()
	})
	gl := listen(h.g, ln)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				close(h.accepted)
				return
			}
			h.accepted <- c.(*Conn)
		}
	}()
	t.Cleanup(func() {
		gl.Close()
		for c := range h.accepted {
			c.Close()
		}
	})
	return h
}

// dial connects from a loopback address of the test's choosing.
func (h *harness) dial(from string) net.Conn {
	h.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatalf("dial from %s: %v", from, err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// admit dials from and returns the server's side of the admitted connection.
func (h *harness) admit(from string) (client net.Conn, server *Conn) {
	h.t.Helper()
	client = h.dial(from)
	select {
	case server = <-h.accepted:
	case <-time.After(5 * time.Second):
		h.t.Fatalf("connection from %s not admitted", from)
	}
	h.t.Cleanup(func() { server.Close() })
	return client, server
}

// refusedWith dials from and expects a 503 with Retry-After naming why.
func (h *harness) refusedWith(from, text string) {
	h.t.Helper()
	c := h.dial(from)
	expect503(h.t, c, text)
}

func (h *harness) count(reason string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused[reason]
}

func expect503(t *testing.T, c net.Conn, text string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no HTTP answer to a refused connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" || !strings.Contains(string(body), text) {
		t.Fatalf("refusal: %d Retry-After %q %q, want 503, 30, %q", resp.StatusCode, resp.Header.Get("Retry-After"), body, text)
	}
}

// expectEvicted checks that a server-side read fails as evicted.
func expectEvicted(t *testing.T, s *Conn) {
	t.Helper()
	_, err := s.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, ErrEvicted) || !errors.As(err, &ne) || !ne.Timeout() || !s.Evicted() {
		t.Fatalf("read of an evicted connection: %v, want ErrEvicted (a timeout)", err)
	}
}

// Ensure that one address cannot hold more than its pending cap, that the
// refusal is a 503 with Retry-After and a reason, and that other addresses
// and closed places are unaffected.
func TestGuard_PerAddressCap(t *testing.T) {
	h := newHarness(t, Limits{MaxPendingPerAddr: 3, RetryAfter: 30 * time.Second})
	var first *Conn
	for i := 0; i < 3; i++ {
		_, s := h.admit("127.0.0.2")
		if first == nil {
			first = s
		}
	}
	h.refusedWith("127.0.0.2", "too many connections from your address")
	if got := h.count(ReasonAddrLimit); got != 1 {
		t.Fatalf("%s counted %d times, want 1", ReasonAddrLimit, got)
	}
	h.admit("127.0.0.3")
	first.Close()
	h.admit("127.0.0.2")
	if got := h.g.PendingFrom(first.Key()); got != 3 {
		t.Fatalf("127.0.0.2 holds %d pending, want 3", got)
	}
}

// Ensure that when the global cap is full an address below its fair share
// gets in by evicting the largest holder's oldest connection, while an
// address at its share is refused.
func TestGuard_FairShare(t *testing.T) {
	h := newHarness(t, Limits{MaxPending: 4, MaxPendingPerAddr: 4, RetryAfter: 30 * time.Second})
	var held []*Conn
	for i := 0; i < 4; i++ {
		_, s := h.admit("127.0.0.2")
		held = append(held, s)
	}
	h.admit("127.0.0.3") // share 4/2 = 2: takes the oldest of 127.0.0.2
	expectEvicted(t, held[0])
	h.refusedWith("127.0.0.2", "server busy") // 3 ≥ its share of 2
	h.admit("127.0.0.4")                      // share 4/3 = 1
	expectEvicted(t, held[1])
	if h.count(ReasonEvicted) != 2 || h.count(ReasonLimit) != 1 || h.g.Pending() != 4 {
		t.Fatalf("evicted %d, refused %d, pending %d; want 2, 1, 4", h.count(ReasonEvicted), h.count(ReasonLimit), h.g.Pending())
	}
	// A read in progress is woken by the eviction.
	done := make(chan error, 1)
	go func() { _, err := held[2].Read(make([]byte, 1)); done <- err }()
	h.admit("127.0.0.5")
	if err := <-done; !errors.Is(err, ErrEvicted) {
		t.Fatalf("blocked read of an evicted connection: %v", err)
	}
}

// Ensure that an idle keep-alive connection is replaced before one that is
// sending a request, even a newer one.
func TestGuard_IdleFirst(t *testing.T) {
	h := newHarness(t, Limits{MaxPendingPerAddr: 2, RetryAfter: 30 * time.Second})
	_, busy := h.admit("127.0.0.2")
	c, idle := h.admit("127.0.0.2")
	io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
	if _, err := idle.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	idle.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n")) // answered: now idle
	h.admit("127.0.0.2")
	expectEvicted(t, idle)
	if busy.Evicted() {
		t.Fatal("the connection sending a request was evicted instead of the idle one")
	}
}

// Ensure that an established session stops counting, an upgraded but
// unauthenticated one keeps counting, and Lookup finds only pending ones.
func TestGuard_EstablishedAndUpgraded(t *testing.T) {
	h := newHarness(t, Limits{MaxPendingPerAddr: 1, RetryAfter: 30 * time.Second})
	c, s := h.admit("127.0.0.2")
	if h.g.Lookup(c.RemoteAddr(), c.LocalAddr()) != s {
		t.Fatal("Lookup does not find the pending connection by its addresses")
	}
	s.Established()
	if h.g.Lookup(c.RemoteAddr(), c.LocalAddr()) != nil || h.g.Pending() != 0 {
		t.Fatal("an established connection is still pending")
	}
	_, s2 := h.admit("127.0.0.2")
	s2.Upgraded()
	h.refusedWith("127.0.0.2", "too many connections from your address")
	var nilConn *Conn
	nilConn.Upgraded()
	nilConn.Established()
	if h.g.Lookup(nil, nil) != nil || (*Guard)(nil).Lookup(c.LocalAddr(), c.RemoteAddr()) != nil {
		t.Fatal("Lookup without addresses or guard found something")
	}
}

// Ensure that a request trickling in below the minimum rate is cut with
// ErrTooSlow once the grace has passed, while one well above it, and a
// keep-alive connection idle between requests, are not.
func TestConn_RateFloor(t *testing.T) {
	h := newHarness(t, Limits{MinRate: 1000, Grace: 300 * time.Millisecond})

	c, s := h.admit("127.0.0.2")
	stop := trickle(c, 20, 100*time.Millisecond) // 200 B/s, a fifth of the floor
	defer stop()
	err := readUntilError(s, 5*time.Second)
	var ne net.Error
	if !errors.Is(err, ErrTooSlow) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read of a request below the floor: %v, want ErrTooSlow", err)
	}

	c, s = h.admit("127.0.0.3")
	stop2 := trickle(c, 500, 100*time.Millisecond) // 5000 B/s
	defer stop2()
	if err := readFor(s, 5000); err != nil {
		t.Fatalf("a request at 5× the floor was cut: %v", err)
	}
	stop2()
	s.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
	s.SetReadDeadline(time.Now().Add(5 * time.Second)) // the server's idle wait
	go func() {
		time.Sleep(600 * time.Millisecond) // idle for twice the grace, then ask again
		io.WriteString(c, "GET /again HTTP/1.1\r\n\r\n")
	}()
	if _, err := s.Read(make([]byte, 64)); err != nil {
		t.Fatalf("an idle keep-alive connection was held to the floor: %v", err)
	}
}

// Ensure that the server's own deadline, when it is the earlier one, ends
// a read with a plain timeout, not ErrTooSlow.
func TestConn_ServerDeadlineWins(t *testing.T) {
	h := newHarness(t, Limits{MinRate: 1000, Grace: time.Hour})
	_, s := h.admit("127.0.0.2")
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 1))
	if !errors.Is(err, errDeadline) || errors.Is(err, ErrTooSlow) {
		t.Fatalf("read past the server's deadline: %v, want a plain timeout", err)
	}
}

// Ensure that a client that sent its whole request before being refused
// still reads the 503 (the guard drains instead of resetting), and that
// below TLS a refusal closes without an answer.
func TestGuard_RefusalSurvivesUnreadRequest(t *testing.T) {
	h := newHarness(t, Limits{MaxPendingPerAddr: 1, RetryAfter: 30 * time.Second})
	h.admit("127.0.0.2")
	c := h.dial("127.0.0.2")
	io.WriteString(c, "POST /api/ingest/ HTTP/1.1\r\nContent-Length: 32768\r\n\r\n"+strings.Repeat("x", 32768))
	expect503(t, c, "too many connections from your address")

	quiet := newHarnessOn(t, Limits{MaxPendingPerAddr: 1}, (*Guard).ListenBelowTLS)
	quiet.admit("127.0.0.2")
	q := quiet.dial("127.0.0.2")
	q.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := q.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, errDeadline) {
		t.Fatalf("refusal below TLS: read %d, %v; want the connection closed", n, err)
	}
}

// Ensure that Retry-After is whole seconds, at least 1.
func TestGuard_ResponseRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 1500 * time.Millisecond: "2", 30 * time.Second: "30"} {
		if r := string(New(Limits{RetryAfter: d}, nil).Response(ReasonLimit)); !strings.Contains(r, "Retry-After: "+want+"\r\n") {
			t.Errorf("RetryAfter %s: %q", d, r)
		}
	}
}

// errDeadline is a plain read timeout.
var errDeadline = os.ErrDeadlineExceeded

// trickle writes n bytes every interval to c until stopped.
func trickle(c net.Conn, n int, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		chunk := []byte(strings.Repeat("x", n))
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

// readUntilError reads s until a read fails; the server's own deadline
// of limit ends a read the floor failed to.
func readUntilError(s *Conn, limit time.Duration) error {
	s.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 512)
	for {
		if _, err := s.Read(buf); err != nil {
			return err
		}
	}
}

// readFor reads n bytes from s.
func readFor(s *Conn, n int) error {
	_, err := io.ReadFull(s, make([]byte, n))
	return err
}
