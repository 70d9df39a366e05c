package central

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/valyala/fasthttp"
)

// The data a reader may ask for: /v1/children/<hash>/<what>.
const (
	ReadScreenTime = "screen_time"
	ReadLocations  = "locations"
	ReadSiteAccess = "site_access"
)

// ScreenTimeReply is the body of GET …/screen_time.
type ScreenTimeReply struct {
	ChildHash string                `json:"child_hash"`
	From      string                `json:"from"`
	To        string                `json:"to"`
	Days      []store.ScreenTimeDay `json:"days"`
}

// LocationsReply is the body of GET …/locations: one page of at most
// limit fixes; NextCursor, when set, asks for the next.
type LocationsReply struct {
	ChildHash  string            `json:"child_hash"`
	From       time.Time         `json:"from"`
	To         time.Time         `json:"to"`
	Locations  []hearth.Location `json:"locations"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// SiteAccessReply is the body of GET …/site_access: one page of at most
// limit visits; NextCursor, when set, asks for the next.
type SiteAccessReply struct {
	ChildHash  string             `json:"child_hash"`
	From       time.Time          `json:"from"`
	To         time.Time          `json:"to"`
	Logs       []hearth.SiteVisit `json:"logs"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// serveRead answers the read API; rest is the path after /v1/children/.
func (s *Server) serveRead(ctx *fasthttp.RequestCtx, rest string) {
	s.handleRead(ctx, rest)
	s.metrics.reads.WithLabelValues(strconv.Itoa(ctx.Response.StatusCode())).Inc()
}

func (s *Server) handleRead(ctx *fasthttp.RequestCtx, rest string) {
	child, what, _ := strings.Cut(strings.TrimSuffix(rest, "/"), "/")
	if child == "" || (what != ReadScreenTime && what != ReadLocations && what != ReadSiteAccess) {
		writeError(ctx, fasthttp.StatusNotFound, "not found: GET "+PathChildren+"<child_hash>/{screen_time,locations,site_access}?from=…&to=…")
		return
	}
	if !ctx.IsGet() {
		ctx.Response.Header.Set("Allow", "GET")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET")
		return
	}
	if !s.authRead(ctx, child) {
		return
	}
	q := readQuery{from: string(ctx.QueryArgs().Peek("from")), to: string(ctx.QueryArgs().Peek("to")),
		limit: string(ctx.QueryArgs().Peek("limit")), cursor: string(ctx.QueryArgs().Peek("cursor"))}
	dbctx, cancel := s.dbContext()
	defer cancel()
	reply, err := s.readData(dbctx, child, what, q, time.Now())
	var bad badQuery
	if errors.As(err, &bad) {
		writeError(ctx, fasthttp.StatusBadRequest, bad.Error())
		return
	}
	switch {
	case errors.Is(err, store.ErrInvalid):
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
	case err != nil:
		s.readFailed(ctx, err)
	default:
		writeJSON(ctx, fasthttp.StatusOK, reply)
	}
}

// authRead lets the admin token read any known child and a reader token
// (hearth-central home add-reader) read its own home's children. A home
// token is refused: it lives on an edge, a router in a family's home, and
// a stolen one must not read the children's history. When it refuses it
// has answered, and counted the reason.
func (s *Server) authRead(ctx *fasthttp.RequestCtx, child string) bool {
	tok, ok := bearer(ctx)
	if !ok {
		s.refuseRead(ctx, ReadRefusedNoToken, fasthttp.StatusUnauthorized,
			"missing bearer token: send Authorization: Bearer <reader or admin token>")
		return false
	}
	dbctx, cancel := s.dbContext()
	defer cancel()
	admin := s.isAdmin(tok)
	var home string
	if !admin {
		var err error
		if home, ok, err = s.readerHome(dbctx, ctx, tok); !ok || err != nil {
			if err != nil {
				s.readFailed(ctx, err)
			}
			return false
		}
	}
	// ChildHomes: in the GuardianAI schema a child may be in several homes.
	homes, known, err := s.store.ChildHomes(dbctx, child)
	switch {
	case err != nil:
		s.readFailed(ctx, err)
		return false
	case admin && !known:
		s.refuseRead(ctx, ReadRefusedUnknownChild, fasthttp.StatusNotFound, "unknown child")
		return false
	case !admin && (!known || !slices.Contains(homes, home)):
		// An unknown child gets 403 too, so a reader cannot probe for others' children.
		s.refuseRead(ctx, ReadRefusedForeignChild, fasthttp.StatusForbidden, "this reader token may read only its own home's children")
		return false
	}
	return true
}

// readerHome returns the home of a reader token. For any other token it
// answers (401 unknown, 403 for a home token, saying what reads) and
// returns ok false; err is a database failure, not yet answered.
func (s *Server) readerHome(dbctx context.Context, ctx *fasthttp.RequestCtx, tok string) (string, bool, error) {
	home, err := s.store.ReaderByToken(dbctx, tok)
	if err == nil {
		return home, true, nil
	}
	if !errors.Is(err, store.ErrUnauthorized) {
		return "", false, err
	}
	switch _, err := s.store.HomeByToken(dbctx, tok); {
	case err == nil:
		s.refuseRead(ctx, ReadRefusedHomeToken, fasthttp.StatusForbidden,
			"a home token may only send batches and fetch its roster; reading needs the admin token or a reader token (hearth-central home add-reader HOME_ID)")
		return "", false, nil
	case errors.Is(err, store.ErrUnauthorized):
		s.refuseRead(ctx, ReadRefusedUnknownToken, fasthttp.StatusUnauthorized, "unknown token")
		return "", false, nil
	default:
		return "", false, err
	}
}

// refuseRead answers a refused read with status and reason and counts it.
func (s *Server) refuseRead(ctx *fasthttp.RequestCtx, label string, status int, reason string) {
	s.ops.readRefused.WithLabelValues(label).Inc()
	if status == fasthttp.StatusUnauthorized {
		writeUnauthorized(ctx, reason)
		return
	}
	writeError(ctx, status, reason)
}

func (s *Server) readFailed(ctx *fasthttp.RequestCtx, err error) {
	if r := dbBusy(err, s.cfg.RetryAfter); r != nil {
		s.refuseLimit(ctx, endpointRead, *r)
		return
	}
	if unavailable(err) {
		writeUnavailable(ctx, s.cfg.RetryAfter, "database unavailable; retry later")
		return
	}
	s.log.Error("read failed", "err", err)
	writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
}

// checkDayRange checks a [from, to] range of YYYY-MM-DD dates.
func checkDayRange(from, to string) error {
	f, err := time.Parse(hearth.DateLayout, from)
	if err != nil {
		return fmt.Errorf("from: %q is not a date YYYY-MM-DD", clip(from))
	}
	t, err := time.Parse(hearth.DateLayout, to)
	if err != nil {
		return fmt.Errorf("to: %q is not a date YYYY-MM-DD", clip(to))
	}
	if t.Before(f) {
		return fmt.Errorf("from (%s) is after to (%s)", from, to)
	}
	return nil
}

// parseTimeRange parses a [from, to] range of RFC 3339 times.
func parseTimeRange(from, to string) (time.Time, time.Time, error) {
	f, err := parseQueryTime(from)
	if err != nil {
		return f, f, fmt.Errorf("from: %q is not an RFC 3339 time (2025-12-10T00:00:00Z)", clip(from))
	}
	t, err := parseQueryTime(to)
	if err != nil {
		return f, t, fmt.Errorf("to: %q is not an RFC 3339 time (2025-12-10T00:00:00Z)", clip(to))
	}
	if t.Before(f) {
		return f, t, fmt.Errorf("from (%s) is after to (%s)", from, to)
	}
	return f.UTC(), t.UTC(), nil
}

// parseQueryTime parses an RFC 3339 time from a query, where an unescaped
// "+01:00" arrives as " 01:00".
func parseQueryTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Contains(s, " ") {
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	}
	return t, err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
