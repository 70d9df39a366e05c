package central

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/guardianai/hearth"

	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// authEdge finds the home of the request's bearer token, and records
// what the edge says of itself in its headers. When it fails it has
// answered (401, 429, 503 or 500) and returns the batch result label.
// An address that presented too many unknown tokens is refused before
// the database is asked. Tokens are never logged, only their first
// characters.
func (s *Server) authEdge(ctx *fasthttp.RequestCtx, endpoint string) (store.Home, string, bool) {
	now := time.Now()
	addr := addrKey(ctx.RemoteIP())
	if wait, blocked := s.guard.throttle.blocked(addr, now); blocked {
		return store.Home{}, s.refuseLimit(ctx, endpoint, badTokenRefusal(wait)), false
	}
	tok, ok := bearer(ctx)
	if !ok {
		s.logRefusedToken(ctx, "", "missing bearer token")
		ctx.SetConnectionClose() // the body is not read
		writeUnauthorized(ctx, "missing bearer token: send Authorization: Bearer <home token>")
		return store.Home{}, BatchUnauthorized, false
	}
	dbctx, cancel := s.dbContext()
	defer cancel()
	home, err := s.homeByToken(dbctx, tok)
	switch {
	case errors.Is(err, store.ErrUnauthorized) && s.isReaderToken(dbctx, tok):
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusForbidden, "a reader token may only read children's data: send batches and fetch the roster with the home token")
		return store.Home{}, BatchUnauthorized, false
	case errors.Is(err, store.ErrUnauthorized):
		s.badToken(ctx, addr, tok, now)
		ctx.SetConnectionClose()
		writeUnauthorized(ctx, "unknown home token")
		return store.Home{}, BatchUnauthorized, false
	case err != nil:
		ctx.SetConnectionClose()
		return store.Home{}, s.storeFailed(ctx, "check home token", store.Home{}, err), false
	}
	s.guard.edges.record(home.ID, &ctx.Request.Header, now)
	s.saveEdge(dbctx, home.ID)
	return home, "", true
}

// badToken counts an unknown token against the client's address and logs
// it (rate-limited): an edge with a wrong token, or someone guessing.
func (s *Server) badToken(ctx *fasthttp.RequestCtx, addr, tok string, now time.Time) {
	if s.guard.throttle.fail(addr, now) {
		s.log.Warn("address throttled: too many unknown tokens", "remote", ctx.RemoteIP().String(), "key", addr,
			"limit", s.cfg.BadTokenLimit, "window", s.cfg.BadTokenWindow)
	}
	s.logRefusedToken(ctx, tok, "unknown token")
}

// logRefusedToken logs a refused token at most every 10 s, with the
// edge's id header, the token's first characters (never more than 4) and
// the address, so an operator can tell a misconfigured edge from a guess.
func (s *Server) logRefusedToken(ctx *fasthttp.RequestCtx, tok, reason string) {
	if ok, held := s.guard.authLog.Allow(10 * time.Second); ok {
		s.log.Warn("token refused", "reason", reason, "path", clip(string(ctx.Path())), "remote", ctx.RemoteIP().String(),
			"edge_id", reportText(ctx.Request.Header.Peek(hearth.HeaderEdgeID)), "token_prefix", tokenPrefix(tok),
			"similar_held_back", held)
	}
}

// tokenPrefix is what a log may show of a token: its first 4 characters,
// fewer for a short one (never more than half of it).
func tokenPrefix(tok string) string {
	n := min(4, len(tok)/2)
	return strings.ToValidUTF8(tok[:n], "?") + "…"
}

// badTokenRefusal is the answer to a throttled address.
func badTokenRefusal(wait time.Duration) refusal {
	return refusal{fasthttp.StatusTooManyRequests, limitBadTokens, "too many unknown tokens from this address; wait", wait}
}

// serveGuardedRead serves the read API behind the bad-token throttle: a
// throttled address is refused before the database is asked, and a 401
// counts against the address.
func (s *Server) serveGuardedRead(ctx *fasthttp.RequestCtx, rest string) {
	now := time.Now()
	addr := addrKey(ctx.RemoteIP())
	if wait, blocked := s.guard.throttle.blocked(addr, now); blocked {
		s.refuseLimit(ctx, endpointRead, badTokenRefusal(wait))
		s.metrics.reads.WithLabelValues(strconv.Itoa(fasthttp.StatusTooManyRequests)).Inc()
		return
	}
	s.serveRead(ctx, rest)
	if tok, ok := bearer(ctx); ok && ctx.Response.StatusCode() == fasthttp.StatusUnauthorized {
		s.badToken(ctx, addr, tok, now)
	}
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
// a flag (metric hearth_central_edges_clock_unknown, GET /fleet) when sent_at was too
// far off to measure one.
func (s *Server) recordClock(ctx context.Context, home store.Home, clock EdgeClock) {
	if !clock.Known {
		s.guard.edges.clock(home.ID, false)
		if ok, held := s.warn.Allow(10 * time.Second); ok {
			s.log.Warn("edge clock is too far off to measure; its batches are taken as received now", "home", home.ID, "similar_held_back", held)
		}
		return
	}
	s.guard.edges.clock(home.ID, true)
	s.recordOffset(ctx, home, clock.Offset, clock.Now)
}

// recordOffset keeps the home's clock offset and last-seen time. It writes
// only when the offset moved by a second or the record is a minute old, so
// a busy edge does not cost a write transaction per batch. A failure is
// logged, not answered: the batch itself is stored.
func (s *Server) recordOffset(ctx context.Context, home store.Home, offset time.Duration, now time.Time) {
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
	home, _, ok := s.authEdge(ctx, endpointRoster)
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
	names, err := s.store.ChildNames(dbctx, home.ID)
	if err != nil {
		s.storeFailed(ctx, "read roster names", home, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, hearth.RosterReply{Children: children, Names: nonEmpty(names),
		RetentionDays: int(s.cfg.Retention() / (24 * time.Hour))})
}

// isReaderToken reports whether tok is a reader token: a valid credential
// used where it has no right, refused with 403 and not counted as a guess.
func (s *Server) isReaderToken(ctx context.Context, tok string) bool {
	_, err := s.store.ReaderByToken(ctx, tok)
	return err == nil
}
