package central

import (
	"errors"
	"fmt"
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

// LocationsReply is the body of GET …/locations.
type LocationsReply struct {
	ChildHash string            `json:"child_hash"`
	From      time.Time         `json:"from"`
	To        time.Time         `json:"to"`
	Locations []hearth.Location `json:"locations"`
}

// SiteAccessReply is the body of GET …/site_access.
type SiteAccessReply struct {
	ChildHash string             `json:"child_hash"`
	From      time.Time          `json:"from"`
	To        time.Time          `json:"to"`
	Logs      []hearth.SiteVisit `json:"logs"`
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
	from, to := string(ctx.QueryArgs().Peek("from")), string(ctx.QueryArgs().Peek("to"))
	dbctx, cancel := s.dbContext()
	defer cancel()
	var reply any
	var err error
	switch what {
	case ReadScreenTime:
		if e := checkDayRange(from, to); e != nil {
			writeError(ctx, fasthttp.StatusBadRequest, e.Error())
			return
		}
		r := ScreenTimeReply{ChildHash: child, From: from, To: to}
		r.Days, err = s.store.ScreenTime(dbctx, child, from, to)
		reply = &r
	case ReadLocations:
		r := LocationsReply{ChildHash: child}
		if r.From, r.To, err = parseTimeRange(from, to); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		r.Locations, err = s.store.Locations(dbctx, child, r.From, r.To)
		r.Locations = nonNil(r.Locations)
		reply = &r
	case ReadSiteAccess:
		r := SiteAccessReply{ChildHash: child}
		if r.From, r.To, err = parseTimeRange(from, to); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		r.Logs, err = s.store.SiteAccess(dbctx, child, r.From, r.To)
		r.Logs = nonNil(r.Logs)
		reply = &r
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

// authRead lets the admin token read any known child and a home token
// read its own home's children. When it refuses it has answered.
func (s *Server) authRead(ctx *fasthttp.RequestCtx, child string) bool {
	tok, ok := bearer(ctx)
	if !ok {
		writeUnauthorized(ctx, "missing bearer token: send Authorization: Bearer <home or admin token>")
		return false
	}
	dbctx, cancel := s.dbContext()
	defer cancel()
	admin := s.isAdmin(tok)
	var home store.Home
	if !admin {
		var err error
		home, err = s.store.HomeByToken(dbctx, tok)
		switch {
		case errors.Is(err, store.ErrUnauthorized):
			writeUnauthorized(ctx, "unknown token")
			return false
		case err != nil:
			s.readFailed(ctx, err)
			return false
		}
	}
	owner, known, err := s.store.ChildHome(dbctx, child)
	switch {
	case err != nil:
		s.readFailed(ctx, err)
		return false
	case admin && !known:
		writeError(ctx, fasthttp.StatusNotFound, "unknown child")
		return false
	case !admin && (!known || owner != home.ID):
		// An unknown child gets 403 too, so a home cannot probe for others' children.
		writeError(ctx, fasthttp.StatusForbidden, "this token may read only its own home's children")
		return false
	}
	return true
}

func (s *Server) readFailed(ctx *fasthttp.RequestCtx, err error) {
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
