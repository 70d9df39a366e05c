package hearth

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Bounds on payload contents; a phone of the seed system stays far below them.
const (
	MaxDaySeconds   = 86400
	MaxHourSeconds  = 3600
	MaxAppIDLen     = 255 // bytes; the dashboard's column is varchar(255)
	MaxApps         = 1000
	MaxURLLen       = 2048 // bytes, after control characters are percent-encoded
	MaxLogs         = 1000
	MaxChildHashLen = 128
	DateLayout      = "2006-01-02"
)

// Absolute bounds on every device time, whatever the receiver's clock says:
// a router whose clock is not yet known still refuses years no phone can
// mean, and every engine can store what is inside them.
var (
	EarliestTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	LatestTime   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) // exclusive
)

// Payload is the typed form of one validated data message: exactly one of
// its fields is set, the one of the message's kind.
type Payload struct {
	ScreenTime *ScreenTime
	Location   *Location
	SiteAccess *SiteAccess
}

// ScreenTime is one child's screen time for one day: the day total and the
// seconds per app and hour.
type ScreenTime struct {
	Date         string                   `json:"date"`
	TotalSeconds int64                    `json:"total_screen_time"`
	Apps         map[string]map[int]int64 `json:"app_wise_data"`
}

// Location is one position fix.
type Location struct {
	Timestamp time.Time `json:"timestamp"`
	Latitude  float64   `json:"latitude"`
	Longitude float64   `json:"longitude"`
}

// SiteAccess is a list of visited sites.
type SiteAccess struct {
	Logs []SiteVisit `json:"logs"`
}

// SiteVisit is one visit to one URL.
type SiteVisit struct {
	Timestamp time.Time `json:"timestamp"`
	URL       string    `json:"url"`
	Accessed  bool      `json:"accessed"`
}

// Window bounds the device times a receiver accepts, relative to Now, the
// reference time: when the message was received, on central's clock. A
// zero Now leaves only the absolute bounds (EarliestTime, LatestTime): the
// edge does so while it does not know central's clock.
type Window struct {
	Now       time.Time
	MaxAge    time.Duration // older data is refused (the retention window)
	MaxFuture time.Duration // data further ahead of Now is refused
}

// DefaultRetention is the retention window of central and the default age
// limit of the edge.
const DefaultRetention = 365 * 24 * time.Hour

// DefaultMaxFuture is how far ahead of the reference time a device
// timestamp may be (phone clocks drift).
const DefaultMaxFuture = 10 * time.Minute

func (w Window) checkTime(field string, t time.Time) error {
	switch {
	case t.Before(EarliestTime):
		return &InvalidError{Code: CodeTooOld, Field: field, Reason: fmt.Sprintf("%s is before %d", t.Format(time.RFC3339), EarliestTime.Year())}
	case !t.Before(LatestTime):
		return &InvalidError{Code: CodeFuture, Field: field, Reason: fmt.Sprintf("%s is not before %d", t.Format(time.RFC3339), LatestTime.Year())}
	case w.Now.IsZero():
		return nil
	case w.MaxAge > 0 && t.Before(w.Now.Add(-w.MaxAge)):
		return &InvalidError{Code: CodeTooOld, Field: field, Reason: fmt.Sprintf("%s is older than the retention window of %s", t.Format(time.RFC3339), days(w.MaxAge))}
	case w.MaxFuture > 0 && t.After(w.Now.Add(w.MaxFuture)):
		return &InvalidError{Code: CodeFuture, Field: field, Reason: fmt.Sprintf("%s is in the future", t.Format(time.RFC3339))}
	}
	return nil
}

// checkDay applies the window to a calendar date; a phone's date is local,
// so a day of slack is allowed at both ends of the relative bounds.
func (w Window) checkDay(field string, day time.Time) error {
	switch {
	case day.Before(EarliestTime):
		return &InvalidError{Code: CodeTooOld, Field: field, Reason: fmt.Sprintf("%s is before %d", day.Format(DateLayout), EarliestTime.Year())}
	case !day.Before(LatestTime):
		return &InvalidError{Code: CodeFuture, Field: field, Reason: fmt.Sprintf("%s is not before %d", day.Format(DateLayout), LatestTime.Year())}
	case w.Now.IsZero():
		return nil
	case w.MaxAge > 0 && day.Before(w.Now.Add(-w.MaxAge-24*time.Hour)):
		return &InvalidError{Code: CodeTooOld, Field: field, Reason: fmt.Sprintf("%s is older than the retention window of %s", day.Format(DateLayout), days(w.MaxAge))}
	case w.MaxFuture > 0 && day.After(w.Now.Add(w.MaxFuture+24*time.Hour)):
		return &InvalidError{Code: CodeFuture, Field: field, Reason: fmt.Sprintf("%s is in the future", day.Format(DateLayout))}
	}
	return nil
}

func days(d time.Duration) string {
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// Rows is how many rows the payload stores: the day plus its per-app
// hours, one fix, or one row per visit. A payload of no rows (a
// site_access without visits) is acknowledged without being stored.
func (p Payload) Rows() int {
	switch {
	case p.ScreenTime != nil:
		n := 1
		for _, hours := range p.ScreenTime.Apps {
			n += len(hours)
		}
		return n
	case p.Location != nil:
		return 1
	case p.SiteAccess != nil:
		return len(p.SiteAccess.Logs)
	}
	return 0
}

// encode returns the canonical compact JSON of the payload: what the edge
// stores and forwards, and what Check reads back unchanged in ModeStrict.
func (p Payload) encode() []byte {
	var v any
	switch {
	case p.ScreenTime != nil:
		v = p.ScreenTime
	case p.Location != nil:
		return appendLocation(make([]byte, 0, 96), p.Location)
	case p.SiteAccess != nil:
		v = p.SiteAccess
	default:
		panic("BUG: encode an empty payload")
	}
	out, err := json.Marshal(v)
	if err != nil {
		panic("BUG: marshal validated payload: " + err.Error())
	}
	return out
}

// AppendAckResult appends what the seed's ack carried in "result" beside
// "stored":true, each pair preceded by a comma: screen_time ,"date":…,
// location ,"timestamp":… (Python's isoformat, as the seed printed it),
// site_access ,"count":…. It is on every ack's path, so it appends
// instead of building strings.
func (p Payload) AppendAckResult(b []byte) []byte {
	switch {
	case p.ScreenTime != nil:
		b = append(b, `,"date":`...)
		return strconv.AppendQuote(b, p.ScreenTime.Date)
	case p.Location != nil:
		b = append(b, `,"timestamp":"`...)
		b = AppendPythonISOFormat(b, p.Location.Timestamp)
		return append(b, '"')
	case p.SiteAccess != nil:
		b = append(b, `,"count":`...)
		return strconv.AppendInt(b, int64(len(p.SiteAccess.Logs)), 10)
	}
	return b
}

// AppendPythonISOFormat appends t as Python's datetime.isoformat() prints
// an aware UTC time with microsecond precision: 2025-12-10T10:30:00+00:00,
// or 2025-12-10T10:30:00.123000+00:00 when it has a fraction. Digits are
// appended by hand: time.Format's layout machinery cost a tenth of the
// edge's CPU per message, most of it growing the replying goroutine's stack.
func AppendPythonISOFormat(b []byte, t time.Time) []byte {
	t = t.UTC() // dropping the nanoseconds changes no field printed: no Truncate
	year, month, day := t.Date()
	if year < 0 || year > 9999 { // outside what the checks let in
		t = t.Truncate(time.Microsecond)
		if t.Nanosecond() == 0 {
			return t.AppendFormat(b, "2006-01-02T15:04:05+00:00")
		}
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000+00:00")
	}
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = appendDigits(append(b, '-'), int(month), 2)
	b = appendDigits(append(b, '-'), day, 2)
	b = appendDigits(append(b, 'T'), hour, 2)
	b = appendDigits(append(b, ':'), minute, 2)
	b = appendDigits(append(b, ':'), sec, 2)
	if us := t.Nanosecond() / 1000; us != 0 {
		b = appendDigits(append(b, '.'), us, 6)
	}
	return append(b, "+00:00"...)
}

// appendDigits appends the last width decimal digits of v (v >= 0),
// zero-padded.
func appendDigits(b []byte, v, width int) []byte {
	n := len(b) + width
	b = append(b, "000000000"[:width]...)
	for i := n - 1; i >= n-width; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// clip shortens s for an error message so that a hostile value cannot
// inflate replies and logs.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// HourKeys returns the hours of one app's row in ascending order.
func HourKeys(hours map[int]int64) []int {
	keys := make([]int, 0, len(hours))
	for h := range hours {
		keys = append(keys, h)
	}
	sort.Ints(keys)
	return keys
}
