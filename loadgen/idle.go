package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
)

// idleDialers bounds how many idle connections are being opened at once.
const idleDialers = 32

// idleSet holds WebSockets that send nothing, to measure what an idle
// connection costs the server.
type idleSet struct {
	mu      sync.Mutex
	conns   []*websocket.Conn
	failed  int
	st      stats // reasons of failures
	dropped atomic.Uint64
	closing atomic.Bool
	readers sync.WaitGroup
}

// openIdle opens n idle connections (direct, or the auth flow in ws-auth
// mode), each with a reader so that the server's pings are answered.
func openIdle(ctx context.Context, cfg *Config, t target, n int) *idleSet {
	s := &idleSet{}
	mode := cfg.Mode
	if mode == ModeHTTP {
		mode = ModeWS
	}
	// Small buffers: the cost measured is the server's, not ours.
	d := &websocket.Dialer{ReadBufferSize: 512, WriteBufferSize: 512, HandshakeTimeout: cfg.Timeout}
	next := make(chan int)
	var dialers sync.WaitGroup
	for range min(idleDialers, n) {
		dialers.Go(func() {
			for i := range next {
				s.open(ctx, d, t, mode, cfg.child(i), cfg.Timeout)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	dialers.Wait()
	return s
}

func (s *idleSet) open(ctx context.Context, d *websocket.Dialer, t target, mode Mode, child string, timeout time.Duration) {
	c, err := dial(ctx, d, t, mode, child, timeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failed++
		s.st.refused++
		s.st.reason("idle connect: " + reason(err))
		return
	}
	s.conns = append(s.conns, c)
	s.readers.Go(func() {
		c.SetReadDeadline(time.Time{})
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				if !s.closing.Load() {
					s.dropped.Add(1)
				}
				return
			}
		}
	})
}

// close says goodbye on every connection and waits for the readers.
func (s *idleSet) close() {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, c := range s.conns {
		c.WriteControl(websocket.CloseMessage, msg, deadline)
		c.Close()
	}
	s.readers.Wait()
}
