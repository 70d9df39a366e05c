package ingest

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errRegistryFull and friends say why a connection was not admitted.
var (
	errConnLimit    = errors.New("too many connections; retry later")
	errIPLimit      = errors.New("too many connections from this address; retry later")
	errShuttingDown = errors.New("server is shutting down; retry later")
)

// registry counts open WebSockets against the limits and stops them on
// shutdown: fasthttp neither counts nor closes hijacked connections.
type registry struct {
	mu       sync.Mutex
	max      int
	maxPerIP int
	admitted int // connections between admit and release
	perIP    map[string]int
	conns    map[*session]struct{}
	closing  bool
	wg       sync.WaitGroup
}

func newRegistry(max, maxPerIP int) *registry {
	return &registry{max: max, maxPerIP: maxPerIP, perIP: map[string]int{}, conns: map[*session]struct{}{}}
}

// admit reserves a place for a connection from ip; release gives it back.
func (r *registry) admit(ip string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closing:
		return errShuttingDown
	case r.admitted >= r.max:
		return errConnLimit
	case r.perIP[ip] >= r.maxPerIP:
		return errIPLimit
	}
	r.perIP[ip]++
	r.admitted++
	r.wg.Add(1)
	return nil
}

// attach registers an upgraded session; it reports false when shutdown has
// begun, in which case the session must close at once.
func (r *registry) attach(s *session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns[s] = struct{}{}
	return !r.closing
}

// release ends what admit (and attach) began.
func (r *registry) release(ip string, s *session) {
	r.mu.Lock()
	if s != nil {
		delete(r.conns, s)
	}
	r.admitted--
	if r.perIP[ip]--; r.perIP[ip] <= 0 {
		delete(r.perIP, ip)
	}
	r.mu.Unlock()
	r.wg.Done()
}

// sessions returns the open sessions.
func (r *registry) sessions() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.conns))
	for s := range r.conns {
		out = append(out, s)
	}
	return out
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// shutdown refuses new connections, asks every session to finish, and
// waits for all of them or ctx.
func (r *registry) shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	for s := range r.conns {
		s.stop()
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recentChildren remembers when children disconnected, to count reconnections.
type recentChildren struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	at     map[string]time.Time
}

func newRecentChildren(window time.Duration, max int) *recentChildren {
	return &recentChildren{window: window, max: max, at: map[string]time.Time{}}
}

// disconnected records that child's connection ended now.
func (r *recentChildren) disconnected(child string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.at) >= r.max {
		for k, t := range r.at {
			if now.Sub(t) > r.window {
				delete(r.at, k)
			}
		}
		if len(r.at) >= r.max {
			return // a flood of distinct children: stop counting rather than grow
		}
	}
	r.at[child] = now
}

// reconnected reports whether child disconnected within the window.
func (r *recentChildren) reconnected(child string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.at[child]
	delete(r.at, child)
	return ok && now.Sub(t) <= r.window
}
