package central

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// Ensure that readLimited reads a body whole within its limit, takes from
// the budget what it allocates (one allocation when the size is known),
// refuses a longer body after one byte past the limit, and refuses when
// the budget is spent.
func TestReadLimited(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10_000) // 100 000 bytes
	for _, tc := range []struct {
		name   string
		limit  int64
		hint   int64
		budget int64
		want   error
		held   int64 // bytes taken from the budget; -1: any up to twice the body
	}{
		{"size known", 1 << 20, int64(len(body)), 1 << 20, nil, int64(len(body))},
		{"size unknown", 1 << 20, 0, 1 << 20, nil, -1},
		{"exactly the limit", int64(len(body)), 0, 1 << 20, nil, int64(len(body))},
		{"one byte over the limit", int64(len(body)) - 1, int64(len(body)), 1 << 20, errBodyTooLarge, 0},
		{"budget spent", 1 << 20, int64(len(body)), int64(len(body)) - 1, errBudgetSpent, 0},
	} {
		for _, oneByte := range []bool{false, true} {
			b := &bodyBudget{max: tc.budget}
			l := b.lease()
			r := bytes.NewReader(body)
			var got []byte
			var err error
			if oneByte {
				got, err = readLimited(iotest.OneByteReader(r), tc.limit, tc.hint, l.take)
			} else {
				got, err = readLimited(r, tc.limit, tc.hint, l.take)
			}
			if !errors.Is(err, tc.want) || (err == nil && !bytes.Equal(got, body)) {
				t.Errorf("%s (one byte %v): %d bytes, %v; want the body and %v", tc.name, oneByte, len(got), err, tc.want)
			}
			if err == nil && (tc.held >= 0 && l.held != tc.held || l.held > 2*int64(len(body))) {
				t.Errorf("%s (one byte %v): took %d bytes from the budget, want %d", tc.name, oneByte, l.held, tc.held)
			}
			l.release()
			if n := b.used.Load(); n != 0 {
				t.Errorf("%s: %d bytes still in use after release", tc.name, n)
			}
		}
	}
	if got, err := readLimited(bytes.NewReader(nil), 10, 0, nil); err != nil || len(got) != 0 {
		t.Errorf("empty body: %q %v", got, err)
	}
	if _, err := readLimited(iotest.ErrReader(errors.New("connection reset")), 10, 0, nil); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("read error: %v", err)
	}
}

// Ensure that two leases share one budget: a request is refused while
// another holds the bytes, and served once they are released.
func TestBodyBudget_Shared(t *testing.T) {
	b := &bodyBudget{max: 100}
	a, c := b.lease(), b.lease()
	if err := a.take(80); err != nil {
		t.Fatal(err)
	}
	if err := c.take(30); !errors.Is(err, errBudgetSpent) {
		t.Fatalf("second lease past the budget: %v", err)
	}
	a.release()
	if err := c.take(30); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if b.used.Load() != 30 {
		t.Fatalf("used %d, want 30", b.used.Load())
	}
	c.release()
	if err := c.takeBody(25); err != nil || b.used.Load() != 100 {
		t.Fatalf("a body byte is charged %d bytes: took 25 body bytes: %v, budget holds %d, want 100", decodeFactor, err, b.used.Load())
	}
	if err := a.takeBody(1); !errors.Is(err, errBudgetSpent) {
		t.Fatalf("past the budget: %v", err)
	}
}

// Ensure that a home gets its burst, then one batch per 1/rate with a
// Retry-After saying when, at most inFlight at once (a refusal for that
// costs no token), and that another home is not affected.
func TestHomeLimiter(t *testing.T) {
	h := newHomeLimiter(2, 2, 1) // 2 per second, burst 2, 1 in flight
	t0 := time.Unix(1_700_000_000, 0)
	if r := h.enter("A", t0); r != nil {
		t.Fatalf("first batch: %+v", r)
	}
	r := h.enter("A", t0)
	if r == nil || r.limit != limitHomeInFlight || r.status != 429 || r.retryAfter <= 0 || !strings.Contains(r.reason, "in flight") {
		t.Fatalf("second batch in flight: %+v", r)
	}
	if r := h.enter("B", t0); r != nil {
		t.Fatalf("another home: %+v", r)
	}
	h.leave("A")
	if r := h.enter("A", t0); r != nil {
		t.Fatalf("second token of the burst: %+v", r)
	}
	h.leave("A")
	r = h.enter("A", t0)
	if r == nil || r.limit != limitHomeRate || r.status != 429 || r.retryAfter != 500*time.Millisecond || !strings.Contains(r.reason, "per second") {
		t.Fatalf("over the rate: %+v", r)
	}
	if r := h.enter("A", t0.Add(500*time.Millisecond)); r != nil {
		t.Fatalf("after 1/rate: %+v", r)
	}
	h.leave("A")
	h.leave("A") // a stray leave does not go below zero
	if st := h.homes["A"]; st.inFlight != 0 {
		t.Fatalf("in flight %d", st.inFlight)
	}
}

// Ensure that an address is throttled once it reaches the limit within
// the window, for the rest of the window only, and that the table of
// addresses stays within its bound.
func TestTokenThrottle(t *testing.T) {
	th := newTokenThrottle(3, time.Minute, 2)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if _, blocked := th.blocked("a", t0); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		if reached := th.fail("a", t0.Add(time.Duration(i)*time.Second)); reached != (i == 2) {
			t.Fatalf("failure %d: reached %v", i+1, reached)
		}
	}
	if wait, blocked := th.blocked("a", t0.Add(20*time.Second)); !blocked || wait != 40*time.Second {
		t.Fatalf("after the limit: blocked %v for %s, want 40s", blocked, wait)
	}
	if _, blocked := th.blocked("b", t0); blocked {
		t.Fatal("another address is blocked")
	}
	if _, blocked := th.blocked("a", t0.Add(time.Minute)); blocked {
		t.Fatal("still blocked after the window")
	}
	th.fail("a", t0.Add(time.Minute)) // a new window starts
	if _, blocked := th.blocked("a", t0.Add(time.Minute)); blocked {
		t.Fatal("blocked after one failure of a new window")
	}
	th.fail("b", t0)
	th.fail("c", t0)
	th.fail("d", t0.Add(2*time.Minute))
	if n := len(th.addrs); n > 2 {
		t.Fatalf("%d addresses tracked, bound 2", n)
	}
}

// Ensure that IPv4 addresses count alone (also when mapped into IPv6) and
// IPv6 addresses by their /64.
func TestAddrKey(t *testing.T) {
	key := func(s string) string { return addrKey(net.ParseIP(s)) }
	if key("192.0.2.1") != "192.0.2.1" || key("::ffff:192.0.2.1") != "192.0.2.1" || key("192.0.2.2") == key("192.0.2.1") {
		t.Errorf("IPv4 keys: %q %q %q", key("192.0.2.1"), key("::ffff:192.0.2.1"), key("192.0.2.2"))
	}
	if a, b := key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb:cccc:dddd:2"); a != b || a != "2001:db8:1:2::/64" {
		t.Errorf("one /64: %q %q", a, b)
	}
	if key("2001:db8:1:3::1") == key("2001:db8:1:2::1") {
		t.Error("two /64s share a key")
	}
}

// Ensure that a log shows at most the first 4 characters of a token, and
// never more than half of a short one.
func TestTokenPrefix(t *testing.T) {
	for tok, want := range map[string]string{
		"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcde": "AbCd…",
		"abc": "a…",
		"":    "…",
	} {
		if got := tokenPrefix(tok); got != want {
			t.Errorf("tokenPrefix(%q) = %q, want %q", tok, got, want)
		}
	}
}

// Ensure that what an edge says of itself is kept printable and short,
// and that counts that are not counts are unknown (-1).
func TestEdgeReportParsing(t *testing.T) {
	if got := reportText([]byte("router\x00-1\n\xff" + strings.Repeat("x", 100))); strings.ContainsAny(got, "\x00\n\xff") || len(got) > maxReportText || !strings.HasPrefix(got, "router-1x") {
		t.Errorf("reportText: %q", got)
	}
	for in, want := range map[string]int64{"42": 42, "0": 0, "-1": -1, "x": -1, "": -1, "99999999999999999999": -1} {
		if got := reportCount([]byte(in)); got != want {
			t.Errorf("reportCount(%q) = %d, want %d", in, got, want)
		}
	}
}
