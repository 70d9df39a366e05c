package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Steps runs the steps of a shutdown in order, logs how long each took and
// collects their errors: a failing step never skips the ones after it.
type Steps struct {
	log  *slog.Logger
	errs []error
}

// NewSteps returns an empty Steps logging to log.
func NewSteps(log *slog.Logger) *Steps { return &Steps{log: log} }

// Run runs one named step.
func (s *Steps) Run(name string, f func() error) {
	t := time.Now()
	err := f()
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
	}
	s.log.Info("stopped "+name, "took", time.Since(t).Round(time.Millisecond), "err", err)
}

// Err joins the errors of every step.
func (s *Steps) Err() error { return errors.Join(s.errs...) }

// ServeUntilDone tells systemd the program is ready, waits for ctx (a
// signal), then runs shutdown within timeout and logs how long it took.
func ServeUntilDone(ctx context.Context, log *slog.Logger, name string, timeout time.Duration, shutdown func(context.Context) error) error {
	Ready(ctx, log)
	<-ctx.Done()
	log.Info("shutting down", "timeout", timeout)
	Stopping()
	t := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info(name+" stopped", "took", time.Since(t).Round(time.Millisecond))
	return nil
}

// CloseListener closes ln (nil is fine) after its server's shutdown:
// fasthttp closes only the listeners its Serve has registered, so a
// shutdown that comes before the Serve goroutine ran would leave ln open
// and the server answering.
func CloseListener(ln net.Listener) {
	if ln != nil {
		_ = ln.Close() // already closed by the server's shutdown: fine
	}
}
