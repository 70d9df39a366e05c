package central

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"github.com/guardianai/hearth"
	"time"

	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// authEdge finds the home of the request's bearer token. When it fails it
// has answered (401, 503 or 500) and returns the batch result label.
// Tokens are never logged.
func (s *Server) authEdge(ctx *fasthttp.RequestCtx) (store.Home, string, bool) {
	tok, ok := bearer(ctx)
	if !ok {
		writeUnauthorized(ctx, "missing bearer token: send Authorization: Bearer <home token>")
		return store.Home{}, BatchUnauthorized, false
	}
	dbctx, cancel := s.dbContext()
	defer cancel()
	home, err := s.store.HomeByToken(dbctx, tok)
	switch {
	case errors.Is(err, store.ErrUnauthorized):
		s.log.Debug("edge refused: unknown home token", "remote", ctx.RemoteIP().String())
		writeUnauthorized(ctx, "unknown home token")
		return store.Home{}, BatchUnauthorized, false
	case err != nil:
		return store.Home{}, s.storeFailed(ctx, "check home token", store.Home{}, err), false
	}
	return home, "", true
}

// isAdmin reports whether tok is the operator's admin token. Hashing first
// makes the comparison constant-time in the token's length too.
func (s *Server) isAdmin(tok string) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.cfg.AdminToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// recordClock keeps what a batch told of the edge's clock: its offset, or
// a flag (metric hearth_central_edge_clock_unknown) when sent_at was too
// far off to measure one.
func (s *Server) recordClock(ctx context.Context, home store.Home, clock EdgeClock) {
	if !clock.Known {
		s.metrics.clockUnknown.WithLabelValues(home.ID).Set(1)
		if ok, held := s.warn.Allow(10 * time.Second); ok {
			s.log.Warn("edge clock is too far off to measure; its batches are taken as received now", "home", home.ID, "similar_held_back", held)
		}
		return
	}
	s.metrics.clockUnknown.WithLabelValues(home.ID).Set(0)
	s.recordOffset(ctx, home, clock.Offset, clock.Now)
}

// recordOffset keeps the home's clock offset and last-seen time. It writes
// only when the offset moved by a second or the record is a minute old, so
// a busy edge does not cost a write transaction per batch. A failure is
// logged, not answered: the batch itself is stored.
func (s *Server) recordOffset(ctx context.Context, home store.Home, offset time.Duration, now time.Time) {
	s.metrics.clockOffset.WithLabelValues(home.ID).Set(offset.Seconds())
	moved := (offset - home.ClockOffset).Abs()
	if moved < time.Second && now.Sub(home.LastSeen) < time.Minute {
		return
	}
	if offset.Abs() > s.cfg.ClockTolerance && moved >= s.cfg.ClockTolerance {
		s.log.Warn("edge clock is off; correcting the times it reports", "home", home.ID, "offset", offset.Round(time.Millisecond))
	}
	if err := s.store.RecordClockOffset(ctx, home.ID, offset, now); err != nil {
		s.log.Warn("could not record the edge's clock offset; will retry with its next batch", "home", home.ID, "err", err)
	}
}

// serveRoster answers GET /v1/edge/roster with the children of the
// token's home.
func (s *Server) serveRoster(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		ctx.Response.Header.Set("Allow", "GET")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: GET the roster")
		return
	}
	home, _, ok := s.authEdge(ctx)
	if !ok {
		return
	}
	dbctx, cancel := s.dbContext()
	defer cancel()
	children, err := s.store.Children(dbctx, home.ID)
	if err != nil {
		s.storeFailed(ctx, "read roster", home, err)
		return
	}
	if children == nil {
		children = []string{}
	}
	writeJSON(ctx, fasthttp.StatusOK, hearth.RosterReply{Children: children, RetentionDays: int(s.cfg.Retention() / (24 * time.Hour))})
}
