package svc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// Serving runs a program's listeners and remembers why one stopped, so
// that /readyz tells the truth: a listener that stops outside a shutdown
// (its socket closed or broken under the server) is logged at ERROR and
// makes Err non-nil. It is safe for concurrent use.
type Serving struct {
	log      *slog.Logger
	onChange func(name string, up bool) // metric hook; may be nil
	stopping atomic.Bool

	mu      sync.Mutex
	stopped []string // why each stopped listener stopped
}

// NewServing returns a Serving logging to log; onChange (may be nil) is
// told when a listener starts (true) or stops outside a shutdown (false).
func NewServing(log *slog.Logger, onChange func(name string, up bool)) *Serving {
	return &Serving{log: log, onChange: onChange}
}

// Go serves ln with serve in the background as the listener called name
// ("public", "admin").
func (s *Serving) Go(name string, ln net.Listener, serve func(net.Listener) error) {
	if s.onChange != nil {
		s.onChange(name, true)
	}
	addr := ln.Addr().String()
	go func() {
		err := serve(ln)
		if s.stopping.Load() {
			return
		}
		s.failed(name, addr, err)
	}()
}

// failed records and logs a listener that stopped outside a shutdown.
func (s *Serving) failed(name, addr string, err error) {
	why := fmt.Sprintf("%s listener %s stopped serving", name, addr)
	if err != nil {
		why += ": " + err.Error()
	} else {
		why += " (its socket was closed)"
	}
	// Logged before it is recorded: whoever sees Err fail finds the log.
	s.log.Error(why+"; /readyz fails until the process is restarted", "listener", name)
	s.mu.Lock()
	s.stopped = append(s.stopped, why)
	s.mu.Unlock()
	if s.onChange != nil {
		s.onChange(name, false)
	}
}

// Stop marks the start of a shutdown: listeners stopping from now on are
// expected and not reported.
func (s *Serving) Stop() { s.stopping.Store(true) }

// Err says which listeners stopped serving and why; nil while all serve.
func (s *Serving) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.stopped) == 0 {
		return nil
	}
	return errors.New(strings.Join(s.stopped, "; "))
}

// IgnoreClosed drops an error of closing a listener that was closed
// already: at shutdown, a listener that stopped before has been reported.
func IgnoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
