package central

import (
	"context"
	"time"
)

// retention prunes data older than the retention window once at start and
// then every PruneInterval, until ctx ends.
func (s *Server) retention(ctx context.Context) {
	defer close(s.bgDone)
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	for {
		s.prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune runs one retention pass.
func (s *Server) prune(ctx context.Context) {
	start := time.Now()
	before := start.Add(-s.cfg.Retention())
	pctx, cancel := context.WithTimeout(ctx, max(s.cfg.StoreTimeout, 10*time.Minute))
	defer cancel()
	n, err := s.store.Prune(pctx, before)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down
		}
		s.metrics.pruneErrors.Inc()
		s.log.Error("retention prune failed; will retry", "in", s.cfg.PruneInterval, "err", err)
		return
	}
	s.metrics.pruned.Add(float64(n))
	s.log.Info("retention prune done", "rows", n, "before", before.UTC().Format(time.RFC3339), "took", time.Since(start).Round(time.Millisecond))
}
