package central

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// probeWrites runs the write probe every db_probe_interval until ctx ends.
func (s *Server) probeWrites(ctx context.Context) {
	defer close(s.probeDone)
	t := time.NewTicker(s.cfg.DBProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.probeWrite()
		}
	}
}

// probeWrite checks that the database takes a write and caches the
// outcome for /readyz, which a load balancer may ask many times a second.
// A change is logged: at ERROR when writes start failing, since every
// batch and phone message is refused meanwhile.
func (s *Server) probeWrite() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	err := s.store.ProbeWrite(ctx)
	var prev *error
	if err != nil {
		err = fmt.Errorf("the database cannot be written: %w", err)
		prev = s.writeErr.Swap(&err)
	} else {
		prev = s.writeErr.Swap(nil)
	}
	s.ops.dbWritable.Set(b2f(err == nil))
	switch {
	case err != nil && (prev == nil || (*prev).Error() != err.Error()):
		s.log.Error("DATABASE NOT WRITABLE: batches and phones' data are refused and /readyz fails until it is fixed",
			"db", RedactDSN(s.cfg.DSN()), "err", err)
	case err == nil && prev != nil:
		s.log.Info("the database takes writes again; /readyz is ready", "db", RedactDSN(s.cfg.DSN()))
	}
}

// readiness is nil while the server serves: started and not stopping,
// both listeners serving, and the database taking writes (as the last
// write probe found). It reads only cached state, so /readyz is cheap.
func (s *Server) readiness() error {
	if !s.ready.Load() {
		return errors.New("starting or shutting down")
	}
	var errs []error
	if err := s.serving.Err(); err != nil {
		errs = append(errs, err)
	}
	if p := s.writeErr.Load(); p != nil {
		errs = append(errs, *p)
	}
	return errors.Join(errs...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
