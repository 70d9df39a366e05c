package hearth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// number is a count as the seed's int() read it.
type number struct {
	whole    int64
	quoted   bool // it came as a string ("3600")
	fraction bool // a fraction was dropped (1800.7 → 1800)
	text     string
}

// parseCount reads a JSON number, or a whole number in a string as
// Python's int() reads it.
func parseCount(raw json.RawMessage) (number, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, ok := jsonString(raw)
		if !ok {
			return number{}, errors.New("must be a whole number of seconds")
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return number{}, fmt.Errorf("must be a whole number of seconds, not %q", clip(s))
		}
		return number{whole: n, quoted: true, text: s}, nil
	}
	var num json.Number
	if !isNumber(raw) || json.Unmarshal(raw, &num) != nil {
		return number{}, fmt.Errorf("must be a whole number of seconds, not %s", clip(string(raw)))
	}
	text := num.String()
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return number{whole: n, text: text}, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.Abs(f) > 1e15 {
		return number{}, fmt.Errorf("%s is out of range", clip(text))
	}
	return number{whole: int64(f), fraction: f != math.Trunc(f), text: text}, nil
}

// parseFloat reads a JSON number, or a number in a string as Python's
// float() reads it.
func parseFloat(raw json.RawMessage) (float64, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		s, ok := jsonString(raw)
		if !ok {
			return 0, false, errors.New("must be a number")
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, false, fmt.Errorf("must be a number, not %q", clip(s))
		}
		return f, true, nil
	}
	// A JSON number is what strconv reads (encoding/json calls it too), and
	// going through json.Unmarshal cost a reflection pass per coordinate.
	if !isJSONNumber(raw) {
		return 0, false, fmt.Errorf("must be a number, not %s", clip(string(raw)))
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil { // out of float64's range, as json.Unmarshal refused it
		return 0, false, fmt.Errorf("must be a number, not %s", clip(string(raw)))
	}
	return f, false, nil
}

// isJSONNumber reports whether raw is exactly one JSON number
// (-?int frac? exp?), so that strconv's wider syntax (hex, inf, nan,
// underscores) never gets in.
func isJSONNumber(raw []byte) bool {
	i := 0
	if i < len(raw) && raw[i] == '-' {
		i++
	}
	switch {
	case i < len(raw) && raw[i] == '0':
		i++
	case i < len(raw) && raw[i] >= '1' && raw[i] <= '9':
		i = skipDigits(raw, i)
	default:
		return false
	}
	if i < len(raw) && raw[i] == '.' {
		j := skipDigits(raw, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		j := skipDigits(raw, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(raw)
}

func skipDigits(raw []byte, i int) int {
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	return i
}

// jsonString reads raw as one JSON string, as json.Unmarshal into a string
// does. A string without escapes, control characters or invalid UTF-8
// (every timestamp a phone sends) is copied out directly: the reflection
// pass cost more than the rest of a location's check.
func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.Trim(raw, " \t\r\n")
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && plainJSONText(raw[1:len(raw)-1]) {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// plainJSONText reports whether b is the inside of a JSON string that
// needs no decoding: no quote, backslash or control character, valid UTF-8.
func plainJSONText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(b)
}

func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

func isList(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '['
}

// truthy is Python's bool() of a JSON value.
func truthy(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0, string(raw) == "null", string(raw) == "false", string(raw) == `""`:
		return false
	case raw[0] == '[' || raw[0] == '{':
		var v any
		_ = json.Unmarshal(raw, &v)
		switch x := v.(type) {
		case []any:
			return len(x) > 0
		case map[string]any:
			return len(x) > 0
		}
		return false
	case isNumber(raw):
		f, err := strconv.ParseFloat(string(raw), 64)
		return err != nil || f != 0
	}
	return true // true, a non-empty string
}

// hasControl reports whether s holds NUL, a C0 control character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// escapeControl percent-encodes the control characters of a URL.
func escapeControl(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// seedDate is the date form Django's parse_date accepted besides ours.
var seedDate = regexp.MustCompile(`^\d{4}-\d{1,2}-\d{1,2}$`)

// date reads a required calendar date YYYY-MM-DD.
func (rd *reader) date(field string, raw json.RawMessage) (string, error) {
	s, err := requiredString(field, raw, "is required (YYYY-MM-DD)")
	if err != nil {
		return "", err
	}
	day, err := time.Parse(DateLayout, s)
	if err != nil {
		day, err = time.Parse("2006-1-2", s)
		if err != nil || !seedDate.MatchString(s) {
			return "", invalid(field, fmt.Sprintf("%q is not a date in the form YYYY-MM-DD", clip(s)))
		}
		canon := day.Format(DateLayout)
		if err := rd.lenient(field, NoteDateForm, "taken as "+canon, fmt.Sprintf("%q is not in the form YYYY-MM-DD", clip(s)), false); err != nil {
			return "", err
		}
	}
	if err := rd.w.checkDay(field, day); err != nil {
		return "", err
	}
	return day.Format(DateLayout), nil
}

// seedTimeLayouts are the forms of a time Django's DateTimeField accepted
// besides RFC 3339; without a zone the time is UTC, as the seed took it.
// seedTime tries them after a space at index 10 became a T, so RFC 3339
// itself comes first: Python's str() of an aware datetime is
// "2025-12-10 11:30:00+01:00".
var seedTimeLayouts = []struct {
	layout string
	zone   bool
}{
	{time.RFC3339Nano, true},
	{"2006-01-02T15:04:05.999999999Z0700", true},
	{"2006-01-02T15:04:05.999999999Z07", true},
	{"2006-01-02T15:04Z07:00", true},
	{"2006-01-02T15:04:05.999999999", false},
	{"2006-01-02T15:04", false},
	{"2006-01-02", false},
}

// time reads a required device time: RFC 3339 with a zone, or in ModeSeed
// the other forms the seed accepted. It returns the time in UTC.
func (rd *reader) time(field string, raw json.RawMessage) (time.Time, error) {
	s, err := requiredString(field, raw, "is required (RFC 3339 with a time zone)")
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if t, err = rd.seedTime(field, s); err != nil {
			return time.Time{}, err
		}
	}
	if err := rd.w.checkTime(field, t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

func (rd *reader) seedTime(field, s string) (time.Time, error) {
	refusal := fmt.Sprintf("%q is not an RFC 3339 time with a zone (2025-12-10T10:30:00Z)", clip(s))
	form := s
	if len(form) > 10 && form[10] == ' ' {
		form = form[:10] + "T" + form[11:]
	}
	for _, l := range seedTimeLayouts {
		t, err := time.Parse(l.layout, form)
		if err != nil {
			continue
		}
		reason, note := NoteTimeForm, "taken as "+t.UTC().Format(time.RFC3339Nano)
		if !l.zone {
			reason, note = NoteTimeNoZone, "no time zone; taken as UTC ("+t.UTC().Format(time.RFC3339Nano)+")"
		}
		return t, rd.lenient(field, reason, note, refusal, false)
	}
	return time.Time{}, invalid(field, refusal)
}

func requiredString(field string, raw json.RawMessage, missing string) (string, error) {
	if isNull(raw) {
		return "", invalid(field, missing)
	}
	s, ok := jsonString(raw)
	if !ok {
		return "", invalid(field, "must be a string")
	}
	if s == "" {
		return "", invalid(field, missing)
	}
	return s, nil
}
