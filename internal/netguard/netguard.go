// Package netguard keeps slow and half-open clients from taking a server's
// connections away from everyone else. It wraps a net.Listener: every
// connection is admitted (or refused with an HTTP 503 and Retry-After) at
// accept, before the HTTP server gives it a worker, and is counted as
// "pending" until the application says it is an established session (an
// authenticated WebSocket). Pending connections are capped per client
// address (IPv4 address or IPv6 /64) and in all; when the global cap is
// full, an address below its fair share still gets in by taking the place
// of the oldest pending connection of the address holding the most. While
// a request is being read, the connection must deliver bytes at a minimum
// average rate after a grace period, or its reads fail with ErrTooSlow.
package netguard

import (
	"net"
	"sync"
	"time"
)

// Reasons a connection is refused or closed, for metrics.
const (
	ReasonAddrLimit = "pending_ip_limit" // the address has MaxPendingPerAddr pending connections
	ReasonLimit     = "pending_limit"    // MaxPending is reached and the address holds its fair share
	ReasonEvicted   = "evicted"          // closed to make room for an address below its fair share
)

// Limits configure a Guard. Zero values of the caps mean no cap.
type Limits struct {
	// MaxPending caps pending connections (requests being read, idle
	// keep-alive, unauthenticated WebSockets) in all.
	MaxPending int
	// MaxPendingPerAddr caps pending connections from one address group.
	MaxPendingPerAddr int
	// MinRate is the average bytes per second a request must arrive at,
	// counted from its first byte, once Grace has passed (each byte
	// received buys 1/MinRate s more, as Apache's mod_reqtimeout does).
	// 0 disables the floor.
	MinRate int
	Grace   time.Duration
	// RetryAfter is advised in the 503 to refused connections.
	RetryAfter time.Duration
}

// Errors a guarded connection's Read returns in place of a plain timeout.
// Both are net.Errors whose Timeout is true, so servers treat them as read
// timeouts; errors.Is tells them apart to answer precisely.
var (
	ErrEvicted error = &guardError{"connection closed to make room for other clients' connections; retry later"}
	ErrTooSlow error = &guardError{"request arrived slower than the minimum rate"}
)

type guardError struct{ msg string }

func (e *guardError) Error() string { return e.msg }
func (e *guardError) Timeout() bool { return true }

// Temporary completes net.Error; retrying the read would not help.
func (e *guardError) Temporary() bool { return false }

// lingerTime bounds how long a refused connection is kept to deliver its
// 503; lingerMax bounds how many are kept at once (a goroutine and a
// socket each, for at most lingerTime).
const (
	lingerTime = time.Second
	lingerMax  = 1024
)

// Guard admits and counts connections of the listeners it wraps. Safe for
// concurrent use.
type Guard struct {
	lim      Limits
	onRefuse func(reason string)
	linger   chan struct{}

	mu    sync.Mutex
	addrs map[Key]*addrState
	total int
	conns map[connID]*Conn // pending connections, for Lookup
}

// New returns a Guard with lim; onRefuse (may be nil) is called with a
// Reason* for every refused or evicted connection.
func New(lim Limits, onRefuse func(reason string)) *Guard {
	if onRefuse == nil {
		onRefuse = func(string) {}
	}
	return &Guard{
		lim:      lim,
		onRefuse: onRefuse,
		linger:   make(chan struct{}, lingerMax),
		addrs:    map[Key]*addrState{},
		conns:    map[connID]*Conn{},
	}
}

// Limits returns the guard's limits.
func (g *Guard) Limits() Limits { return g.lim }

// Listen wraps ln: its Accept returns only admitted connections, as *Conn;
// refused ones are answered 503 + Retry-After.
func (g *Guard) Listen(ln net.Listener) net.Listener {
	return &listener{Listener: ln, g: g, answer: true}
}

// ListenBelowTLS is Listen for a listener that a TLS layer wraps in turn:
// refused connections are closed without an answer, since plain HTTP in
// place of a TLS handshake would be garbage to the client. The guard then
// counts and times TLS records, which is what the connection costs.
func (g *Guard) ListenBelowTLS(ln net.Listener) net.Listener { return &listener{Listener: ln, g: g} }

type listener struct {
	net.Listener
	g      *Guard
	answer bool // refusals get an HTTP 503
}

// Accept admits the next connection, answering refused ones on the side.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		gc := newConn(c, l.g)
		if reason := l.g.admit(gc); reason != "" {
			l.g.refuse(c, reason, l.answer)
			continue
		}
		return gc, nil
	}
}

// Lookup returns the pending guarded connection between local and remote
// (as a server's request context reports them), or nil: through wrappers
// an HTTP server puts around connections, the addresses still name it.
func (g *Guard) Lookup(local, remote net.Addr) *Conn {
	if g == nil || local == nil || remote == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns[connID{local.String(), remote.String()}]
}

// Pending returns the number of pending connections.
func (g *Guard) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// PendingFrom returns the number of pending connections from key's group.
func (g *Guard) PendingFrom(k Key) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if a := g.addrs[k]; a != nil {
		return a.pending
	}
	return 0
}
