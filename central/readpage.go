package central

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
)

// Bounds of the read API (docs/edge-api.md, "Read API"): a reply holds at
// most maxReadLimit rows (about 1 MB of JSON), defaultReadLimit unless the
// reader asks; screen time, a row per day, is read at most
// maxScreenTimeDays at once.
const (
	defaultReadLimit  = 1000
	maxReadLimit      = 10000
	maxScreenTimeDays = 400
)

// readQuery is a read's query parameters as sent.
type readQuery struct{ from, to, limit, cursor string }

// badQuery is a query the reader must fix: answered 400 with its text.
type badQuery struct{ msg string }

func (b badQuery) Error() string { return b.msg }

func badf(format string, args ...any) error { return badQuery{fmt.Sprintf(format, args...)} }

// readData reads one page of child's data of kind what at now.
func (s *Server) readData(ctx context.Context, child, what string, q readQuery, now time.Time) (any, error) {
	if what == ReadScreenTime {
		return s.readScreenTime(ctx, child, q, now)
	}
	from, to, err := parseTimeRange(q.from, orNow(q.to, now))
	if err != nil {
		return nil, badQuery{err.Error()}
	}
	page, err := parsePage(q.limit, q.cursor)
	if err != nil {
		return nil, err
	}
	want := page.Limit
	page.Limit++ // one more row says whether there is a next page
	if what == ReadLocations {
		r := LocationsReply{ChildHash: child, From: from, To: to}
		if r.Locations, err = s.store.LocationsPage(ctx, child, from, to, page); err != nil {
			return nil, err
		}
		if len(r.Locations) > want {
			r.Locations = r.Locations[:want]
			r.NextCursor = encodeCursor(r.Locations[want-1].Timestamp, "")
		}
		r.Locations = nonNil(r.Locations)
		return &r, nil
	}
	r := SiteAccessReply{ChildHash: child, From: from, To: to}
	if r.Logs, err = s.store.SiteAccessPage(ctx, child, from, to, page); err != nil {
		return nil, err
	}
	if len(r.Logs) > want {
		r.Logs = r.Logs[:want]
		r.NextCursor = encodeCursor(r.Logs[want-1].Timestamp, r.Logs[want-1].URL)
	}
	r.Logs = nonNil(r.Logs)
	return &r, nil
}

// readScreenTime reads a child's days: to defaults to today (UTC), and a
// range is at most maxScreenTimeDays long, so a reply is bounded.
func (s *Server) readScreenTime(ctx context.Context, child string, q readQuery, now time.Time) (any, error) {
	to := q.to
	if to == "" {
		to = now.UTC().Format(hearth.DateLayout)
	}
	if err := checkDayRange(q.from, to); err != nil {
		return nil, badQuery{err.Error()}
	}
	f, _ := time.Parse(hearth.DateLayout, q.from)
	t, _ := time.Parse(hearth.DateLayout, to)
	if days := int(t.Sub(f).Hours()/24) + 1; days > maxScreenTimeDays {
		return nil, badf("from %s to %s is %d days: ask for at most %d at once", q.from, to, days, maxScreenTimeDays)
	}
	r := ScreenTimeReply{ChildHash: child, From: q.from, To: to}
	var err error
	r.Days, err = s.store.ScreenTime(ctx, child, q.from, to)
	return &r, err
}

// orNow is to, or now in RFC 3339 when to is absent.
func orNow(to string, now time.Time) string {
	if to == "" {
		return now.UTC().Format(time.RFC3339Nano)
	}
	return to
}

// parsePage reads limit (1…maxReadLimit, default defaultReadLimit) and
// the cursor of the previous page.
func parsePage(limit, cursor string) (store.Page, error) {
	p := store.Page{Limit: defaultReadLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > maxReadLimit {
			return p, badf("limit: %q is not a number from 1 to %d", clip(limit), maxReadLimit)
		}
		p.Limit = n
	}
	if cursor != "" {
		var ok bool
		if p.AfterTS, p.AfterURL, ok = decodeCursor(cursor); !ok {
			return p, badf("cursor: %q is not a next_cursor of this API", clip(cursor))
		}
	}
	return p, nil
}

// A cursor is the key of a page's last row, opaque to readers: its time
// in Unix microseconds and, for site access, its URL, base64url-encoded.
func encodeCursor(ts time.Time, url string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ts.UnixMicro(), 10) + "\n" + url))
}

func decodeCursor(c string) (time.Time, string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", false
	}
	us, url, ok := strings.Cut(string(b), "\n")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", false
	}
	return time.UnixMicro(n).UTC(), url, true
}
