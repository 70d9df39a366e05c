package hearth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"
)

// Bounds on payload contents; a phone of the seed system stays far below them.
const (
	MaxDaySeconds  = 86400
	MaxHourSeconds = 3600
	MaxAppIDLen    = 256
	MaxApps        = 1000
	MaxURLLen      = 2048
	MaxLogs        = 1000
	DateLayout     = "2006-01-02"
)

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

// Window bounds the device timestamps a receiver accepts. A zero Now turns
// the time checks off: the edge does so while its clock is not trustworthy.
type Window struct {
	Now       time.Time
	MaxAge    time.Duration // older data is refused (the retention window)
	MaxFuture time.Duration // data further ahead of Now is refused
}

// DefaultRetention is the retention window of central and the default age
// limit of the edge.
const DefaultRetention = 365 * 24 * time.Hour

// DefaultMaxFuture is how far ahead of the receiver's clock a device
// timestamp may be (phone clocks drift).
const DefaultMaxFuture = 10 * time.Minute

// Validate checks data as a payload of kind k and returns its canonical
// compact JSON. Every refusal is an *InvalidError naming the field.
func Validate(k Kind, data []byte, w Window) ([]byte, error) {
	var v any
	var err error
	switch k {
	case KindScreenTime:
		v, err = ParseScreenTime(data, w)
	case KindLocation:
		v, err = ParseLocation(data, w)
	case KindSiteAccess:
		v, err = ParseSiteAccess(data, w)
	default:
		return nil, &InvalidError{Code: CodeUnknownType, Field: "type", Reason: fmt.Sprintf("unknown message type %q", k)}
	}
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		panic("BUG: marshal validated payload: " + err.Error())
	}
	return out, nil
}

// ParseScreenTime decodes and validates a screen_time payload.
func ParseScreenTime(data []byte, w Window) (ScreenTime, error) {
	var raw struct {
		Date  *string                               `json:"date"`
		Total json.RawMessage                       `json:"total_screen_time"`
		Apps  map[string]map[string]json.RawMessage `json:"app_wise_data"`
	}
	if err := decodeObject(data, &raw); err != nil {
		return ScreenTime{}, err
	}
	var st ScreenTime
	if raw.Date == nil {
		return st, invalid("date", "is required (YYYY-MM-DD)")
	}
	day, err := time.Parse(DateLayout, *raw.Date)
	if err != nil {
		return st, invalid("date", fmt.Sprintf("%q is not a date in the form YYYY-MM-DD", clip(*raw.Date)))
	}
	if err := w.checkDay(day); err != nil {
		return st, err
	}
	st.Date = *raw.Date
	if raw.Total == nil || string(raw.Total) == "null" {
		return st, invalid("total_screen_time", "is required (seconds)")
	}
	if st.TotalSeconds, err = seconds("total_screen_time", raw.Total, MaxDaySeconds); err != nil {
		return st, err
	}
	st.Apps, err = parseApps(raw.Apps)
	return st, err
}

func parseApps(raw map[string]map[string]json.RawMessage) (map[string]map[int]int64, error) {
	if len(raw) > MaxApps {
		return nil, invalid("app_wise_data", fmt.Sprintf("has %d apps; at most %d allowed", len(raw), MaxApps))
	}
	apps := make(map[string]map[int]int64, len(raw))
	for app, hours := range raw {
		if app == "" {
			return nil, invalid("app_wise_data", "app id must not be empty")
		}
		if len(app) > MaxAppIDLen {
			return nil, invalid("app_wise_data", fmt.Sprintf("app id longer than %d bytes", MaxAppIDLen))
		}
		field := "app_wise_data." + clip(app)
		if hours == nil {
			return nil, invalid(field, "must be an object of hour → seconds")
		}
		parsed := make(map[int]int64, len(hours))
		for h, n := range hours {
			hour, err := strconv.Atoi(h)
			if err != nil || hour < 0 || hour > 23 || strconv.Itoa(hour) != h {
				return nil, invalid(field, fmt.Sprintf("hour %q is not an hour 0-23", clip(h)))
			}
			if parsed[hour], err = seconds(field+"."+h, n, MaxHourSeconds); err != nil {
				return nil, err
			}
		}
		apps[app] = parsed
	}
	return apps, nil
}

// ParseLocation decodes and validates a location payload.
func ParseLocation(data []byte, w Window) (Location, error) {
	var raw struct {
		Timestamp *string  `json:"timestamp"`
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
	}
	if err := decodeObject(data, &raw); err != nil {
		return Location{}, err
	}
	var loc Location
	var err error
	if loc.Timestamp, err = timestamp("timestamp", raw.Timestamp, w); err != nil {
		return loc, err
	}
	if loc.Latitude, err = coordinate("latitude", raw.Latitude, 90); err != nil {
		return loc, err
	}
	loc.Longitude, err = coordinate("longitude", raw.Longitude, 180)
	return loc, err
}

// ParseSiteAccess decodes and validates a site_access payload.
func ParseSiteAccess(data []byte, w Window) (SiteAccess, error) {
	var raw struct {
		Logs *[]json.RawMessage `json:"logs"`
	}
	if err := decodeObject(data, &raw); err != nil {
		return SiteAccess{}, err
	}
	if raw.Logs == nil {
		return SiteAccess{}, invalid("logs", "is required (a list of visits)")
	}
	logs := *raw.Logs
	if len(logs) == 0 {
		return SiteAccess{}, invalid("logs", "must not be empty")
	}
	if len(logs) > MaxLogs {
		return SiteAccess{}, invalid("logs", fmt.Sprintf("has %d entries; at most %d allowed", len(logs), MaxLogs))
	}
	sa := SiteAccess{Logs: make([]SiteVisit, 0, len(logs))}
	for i, l := range logs {
		v, err := parseVisit(fmt.Sprintf("logs[%d]", i), l, w)
		if err != nil {
			return SiteAccess{}, err
		}
		sa.Logs = append(sa.Logs, v)
	}
	return sa, nil
}

func parseVisit(field string, data []byte, w Window) (SiteVisit, error) {
	var raw struct {
		Timestamp *string `json:"timestamp"`
		URL       *string `json:"url"`
		Accessed  *bool   `json:"accessed"`
	}
	if err := decodeObjectAt(field, data, &raw); err != nil {
		return SiteVisit{}, err
	}
	var v SiteVisit
	var err error
	if v.Timestamp, err = timestamp(field+".timestamp", raw.Timestamp, w); err != nil {
		return v, err
	}
	switch {
	case raw.URL == nil || *raw.URL == "":
		return v, invalid(field+".url", "is required and must not be empty")
	case len(*raw.URL) > MaxURLLen:
		return v, invalid(field+".url", fmt.Sprintf("longer than %d bytes", MaxURLLen))
	}
	v.URL = *raw.URL
	if raw.Accessed == nil {
		return v, invalid(field+".accessed", "is required (true or false)")
	}
	v.Accessed = *raw.Accessed
	return v, nil
}

// decodeObject decodes a JSON object into dst, turning decoder errors into
// clear *InvalidErrors.
func decodeObject(data []byte, dst any) error {
	return decodeObjectAt("data", data, dst)
}

func decodeObjectAt(field string, data []byte, dst any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return invalid(field, "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalid(joinField(field, te.Field), fmt.Sprintf("must not be a JSON %s", clip(te.Value)))
		}
		return invalid(field, "is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid(field, "has data after the JSON object")
	}
	return nil
}

func joinField(parent, child string) string {
	if child == "" || parent == "data" {
		if child == "" {
			return parent
		}
		return child
	}
	return parent + "." + child
}

// seconds parses a count of seconds. A number in a string ("3600") is
// accepted, as the seed's Django fields accepted it.
func seconds(field string, raw json.RawMessage, max int64) (int64, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil || n == "" {
		return 0, invalid(field, fmt.Sprintf("must be a whole number of seconds, not %s", clip(string(raw))))
	}
	s, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(n), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1e15 {
			return 0, invalid(field, fmt.Sprintf("%s is not a whole number of seconds", clip(string(n))))
		}
		s = int64(f)
	}
	if s < 0 || s > max {
		return 0, invalid(field, fmt.Sprintf("%d seconds is outside 0-%d", s, max))
	}
	return s, nil
}

func coordinate(field string, v *float64, limit float64) (float64, error) {
	if v == nil {
		return 0, invalid(field, "is required")
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < -limit || *v > limit {
		return 0, invalid(field, fmt.Sprintf("%v is outside -%v..%v", *v, limit, limit))
	}
	return *v, nil
}

func timestamp(field string, s *string, w Window) (time.Time, error) {
	if s == nil {
		return time.Time{}, invalid(field, "is required (RFC 3339 with a time zone)")
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, invalid(field, fmt.Sprintf("%q is not an RFC 3339 time with a zone (2025-12-10T10:30:00Z)", clip(*s)))
	}
	// The canonical form is UTC, which JSON can only carry for years 0-9999:
	// an offset must not push a time out of that range (Marshal would fail).
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Time{}, invalid(field, fmt.Sprintf("%q is outside the years 0000-9999 in UTC", clip(*s)))
	}
	if err := w.checkTime(field, t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func (w Window) checkTime(field string, t time.Time) error {
	if w.Now.IsZero() {
		return nil
	}
	if w.MaxAge > 0 && t.Before(w.Now.Add(-w.MaxAge)) {
		return &InvalidError{Code: CodeTooOld, Field: field, Reason: fmt.Sprintf("%s is older than the retention window of %s", t.Format(time.RFC3339), days(w.MaxAge))}
	}
	if w.MaxFuture > 0 && t.After(w.Now.Add(w.MaxFuture)) {
		return &InvalidError{Code: CodeFuture, Field: field, Reason: fmt.Sprintf("%s is in the future", t.Format(time.RFC3339))}
	}
	return nil
}

// checkDay applies the window to a calendar date; a phone's date is local,
// so a day of slack is allowed at both ends.
func (w Window) checkDay(day time.Time) error {
	if w.Now.IsZero() {
		return nil
	}
	if w.MaxAge > 0 && day.Before(w.Now.Add(-w.MaxAge-24*time.Hour)) {
		return &InvalidError{Code: CodeTooOld, Field: "date", Reason: fmt.Sprintf("%s is older than the retention window of %s", day.Format(DateLayout), days(w.MaxAge))}
	}
	if w.MaxFuture > 0 && day.After(w.Now.Add(w.MaxFuture+24*time.Hour)) {
		return &InvalidError{Code: CodeFuture, Field: "date", Reason: fmt.Sprintf("%s is in the future", day.Format(DateLayout))}
	}
	return nil
}

func days(d time.Duration) string {
	return fmt.Sprintf("%d days", int(d.Hours()/24))
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
