package central

import (
	"context"
	"time"

	"github.com/guardianai/hearth/central/store"
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

// prune runs one retention pass. The store deletes in small batches
// (store.Prune), so batches of edges are applied in between; on
// PostgreSQL a replica that finds another pruning skips its pass.
func (s *Server) prune(ctx context.Context) {
	start := time.Now()
	before := start.Add(-s.cfg.Retention())
	pctx, cancel := context.WithTimeout(ctx, max(s.cfg.StoreTimeout, 10*time.Minute))
	defer cancel()
	release, ok := s.pruneLock(ctx, pctx)
	if !ok {
		return
	}
	defer release()
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

// pruneLock takes the store's prune lock (PostgreSQL: one replica prunes
// at a time); ok false means skip this pass: another replica prunes, the
// lock could not be asked for (counted and logged), or central stops.
func (s *Server) pruneLock(ctx, pctx context.Context) (release func(), ok bool) {
	l, locks := s.store.(store.PruneLocker)
	if !locks {
		return func() {}, true
	}
	release, mine, err := l.PruneLock(pctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.metrics.pruneErrors.Inc()
		s.log.Error("retention prune failed; will retry", "in", s.cfg.PruneInterval, "err", err)
	case err == nil && !mine:
		s.log.Info("retention prune skipped: another replica prunes now")
	}
	return release, err == nil && mine
}
