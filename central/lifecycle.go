package central

import (
	"context"
	"errors"
	"time"

	"github.com/guardianai/hearth/central/store"
)

// homeByToken returns the home of a home token: its current one, or its
// previous one while a planned rotation's grace period lasts (kept in the
// database, so every replica ends it at the same time).
func (s *Server) homeByToken(ctx context.Context, tok string) (store.Home, error) {
	home, err := s.store.HomeByToken(ctx, tok)
	if !errors.Is(err, store.ErrUnauthorized) {
		return home, err
	}
	home, err = s.store.HomeByGraceToken(ctx, tok)
	if err == nil {
		if ok, held := s.warn.Allow(10 * time.Second); ok {
			s.log.Warn("home sent its previous token, still accepted in its grace period; configure the new one on its edge",
				"home", home.ID, "similar_held_back", held)
		}
	}
	return home, err
}

// saveEdge writes what the home's edge last said of itself to the store
// when it is due (edgeReports.toSave), so home list and the console of
// every replica show it, and a roster sync counts as last seen. A failure
// is logged, not answered: the request itself goes on.
func (s *Server) saveEdge(ctx context.Context, home string) {
	r, due := s.guard.edges.toSave(home)
	if !due {
		return
	}
	if err := s.store.RecordEdge(ctx, home, r.State()); err != nil {
		s.guard.edges.unsave(home)
		if ok, held := s.warn.Allow(10 * time.Second); ok {
			s.log.Warn("could not record the edge's state; will retry with its next request", "home", home, "err", err, "similar_held_back", held)
		}
	}
}

// LiveEdges returns what each home's edge said of itself in its last
// request to this replica (fresher than the store's copy, written at
// most once a minute), by home.
func (s *Server) LiveEdges() map[string]store.EdgeState {
	out := map[string]store.EdgeState{}
	for home, r := range s.guard.edges.Reports() {
		out[home] = r.State()
	}
	return out
}

// nonEmpty is m, or nil when it is empty (left out of JSON).
func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
