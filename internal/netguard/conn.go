package netguard

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Phases of a guarded connection.
const (
	phaseHTTP        int32 = iota // reading HTTP requests: pending, held to the rate floor
	phaseUpgraded                 // a WebSocket not yet authenticated: pending, no floor
	phaseEstablished              // an authenticated session: no longer the guard's concern
)

// connID names a connection by its two ends.
type connID struct{ local, remote string }

// Conn is an admitted connection. Until Established it counts as pending
// and its read deadlines are the earlier of the server's and the rate
// floor's; after, it is the plain connection.
type Conn struct {
	net.Conn
	g   *Guard
	key Key
	id  connID

	phase   atomic.Int32
	evicted atomic.Bool
	idle    atomic.Bool // answered, waiting for the next request's first byte; written under mu

	mu       sync.Mutex
	reqStart time.Time // first byte of the request being read
	reqBytes int64     // bytes of it read so far
	server   time.Time // the read deadline the server set

	// Owned by g.mu.
	tracked    bool
	prev, next *Conn
}

func newConn(c net.Conn, g *Guard) *Conn {
	return &Conn{
		Conn:     c,
		g:        g,
		key:      KeyOf(c.RemoteAddr()),
		id:       connID{c.LocalAddr().String(), c.RemoteAddr().String()},
		reqStart: time.Now(),
	}
}

// Key returns the connection's address group.
func (c *Conn) Key() Key { return c.key }

// Upgraded marks the connection as a WebSocket that has not authenticated
// yet: it stays pending (it costs the server without having proved
// anything) but is no longer held to the HTTP rate floor, since a phone
// may be silent between frames. Nil-safe.
func (c *Conn) Upgraded() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase.Load() != phaseHTTP {
		return
	}
	c.phase.Store(phaseUpgraded)
	c.applyLocked()
}

// Established stops counting the connection as pending: it is an
// authenticated session, which the application limits itself. A
// connection already evicted stays evicted. Nil-safe.
func (c *Conn) Established() {
	if c == nil {
		return
	}
	c.g.untrack(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.evicted.Load() {
		return
	}
	c.phase.Store(phaseEstablished)
	_ = c.Conn.SetReadDeadline(c.server)
}

// Evicted reports whether the guard closed the connection to make room.
// Nil-safe.
func (c *Conn) Evicted() bool { return c != nil && c.evicted.Load() }

// Read reads under the earlier of the server's deadline and the floor's.
func (c *Conn) Read(b []byte) (int, error) {
	if c.phase.Load() == phaseEstablished {
		return c.Conn.Read(b)
	}
	floor := c.arm()
	n, err := c.Conn.Read(b)
	return n, c.account(n, err, floor)
}

// Write marks the request answered: until the next request's first byte
// the connection is idle and not held to the floor.
func (c *Conn) Write(b []byte) (int, error) {
	if c.phase.Load() == phaseHTTP && !c.idle.Load() {
		c.mu.Lock()
		c.idle.Store(true)
		c.mu.Unlock()
	}
	return c.Conn.Write(b)
}

// SetReadDeadline records the server's deadline; the floor's may be earlier.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.phase.Load() == phaseEstablished {
		return c.Conn.SetReadDeadline(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.server = t
	return c.applyLocked()
}

// SetDeadline is SetReadDeadline and SetWriteDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.Conn.SetWriteDeadline(t))
}

// Close stops counting the connection and closes it.
func (c *Conn) Close() error {
	c.g.untrack(c)
	return c.Conn.Close()
}

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// arm sets the deadline for the next read and returns the floor's part of
// it (zero when the floor does not apply).
func (c *Conn) arm() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.applyLocked()
	return c.floorLocked()
}

// applyLocked puts the effective read deadline on the connection.
func (c *Conn) applyLocked() error {
	if c.evicted.Load() {
		return c.Conn.SetReadDeadline(aLongTimeAgo)
	}
	return c.Conn.SetReadDeadline(earliest(c.server, c.floorLocked()))
}

// floorLocked is when the request being read falls below the minimum
// rate: its start, plus the grace, plus 1/MinRate s per byte received.
func (c *Conn) floorLocked() time.Time {
	if c.g.lim.MinRate <= 0 || c.phase.Load() != phaseHTTP || c.idle.Load() {
		return time.Time{}
	}
	earned := time.Duration(float64(c.reqBytes) / float64(c.g.lim.MinRate) * float64(time.Second))
	return c.reqStart.Add(c.g.lim.Grace + earned)
}

// account counts what a read brought and names the guard's own timeouts.
func (c *Conn) account(n int, err error, floor time.Time) error {
	if n > 0 && c.phase.Load() == phaseHTTP {
		c.mu.Lock()
		if c.idle.Load() { // the first byte of the next request
			c.idle.Store(false)
			c.reqStart, c.reqBytes = time.Now(), 0
		}
		c.reqBytes += int64(n)
		c.mu.Unlock()
	}
	switch {
	case err == nil:
		return nil
	case c.evicted.Load():
		return ErrEvicted
	case !floor.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(floor) && c.floorBound(floor):
		return ErrTooSlow
	}
	return err
}

// floorBound reports whether floor, not the server's deadline, ended a read.
func (c *Conn) floorBound(floor time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server.IsZero() || floor.Before(c.server)
}

// evict makes pending and future reads fail with ErrEvicted.
func (c *Conn) evict() {
	c.evicted.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.Conn.SetReadDeadline(aLongTimeAgo)
}

// isIdle reports whether the connection waits between HTTP requests.
func (c *Conn) isIdle() bool { return c.phase.Load() == phaseHTTP && c.idle.Load() }

// aLongTimeAgo is a deadline that has passed: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// earliest returns the earlier of two deadlines, where zero means none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
