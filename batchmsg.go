package hearth

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// This file is central's fast path for what edges forward: a batch body
// decoded in one pass into BatchMessages, and each message's data straight
// into its Payload under ModeStrict. Both accept only input in the plain
// form edges write (no escapes, no unknown or repeated members, values of
// the expected JSON type, inside every bound) and say so with ok; for
// anything else the caller uses the general decoders, whose answer, and
// refusal text, is then the one given. So the fast path never changes what
// is accepted or how it is refused: it only skips the generic decoding
// (maps of raw members, a re-encoding) for the input that would pass.

// ScannedBatch is a batch body as ScanBatch read it.
type ScannedBatch struct {
	EdgeID   string
	SentAt   string // not yet parsed
	Messages []BatchMessage
}

// ScanBatch decodes a batch body (docs/edge-api.md) in one pass. Every
// message has a seq; other members may be missing (checked per message
// later). The strings of the result share one copy of body; each Data is
// a slice of body, nil for a missing or null data. ok is false for a body
// not in the plain form, which the caller then decodes with encoding/json.
func ScanBatch(body []byte) (b ScannedBatch, ok bool) {
	s := scanner{buf: body, str: string(body)}
	if !s.byte('{') {
		return b, false
	}
	var seen [3]bool
	for first := true; ; first = false {
		if s.byte('}') {
			break
		}
		if !first && !s.byte(',') {
			return b, false
		}
		key, ok := s.plainString()
		if !ok || !s.byte(':') {
			return b, false
		}
		i := indexOf(key, "edge_id", "sent_at", "messages")
		if i < 0 || seen[i] {
			return b, false
		}
		seen[i] = true
		switch i {
		case 0:
			b.EdgeID, ok = s.plainString()
		case 1:
			b.SentAt, ok = s.plainString()
		case 2:
			b.Messages, ok = s.messages()
		}
		if !ok {
			return b, false
		}
	}
	s.space()
	return b, seen[1] && seen[2] && s.pos == len(s.buf)
}

// messages reads the list of batch messages.
func (s *scanner) messages() ([]BatchMessage, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := make([]BatchMessage, 0, s.guessCount()+1)
	if s.byte(']') {
		return out, true
	}
	for {
		var m BatchMessage
		if !s.message(&m) {
			return nil, false
		}
		out = append(out, m)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// guessCount guesses the number of messages from the members named "seq".
func (s *scanner) guessCount() int {
	n := 0
	for i := s.pos; i+6 <= len(s.str); i++ {
		if s.str[i] == '"' && s.str[i+1:i+6] == `seq":` {
			n++
			i += 5
		}
	}
	return n
}

// message reads one batch message; it must have a seq.
func (s *scanner) message(m *BatchMessage) bool {
	if !s.byte('{') {
		return false
	}
	var seen [7]bool
	for first := true; ; first = false {
		if s.byte('}') {
			return seen[0]
		}
		if !first && !s.byte(',') {
			return false
		}
		key, ok := s.plainString()
		if !ok || !s.byte(':') {
			return false
		}
		i := indexOf(key, "seq", "child_hash", "type", "received_at", "via", "data", "synced")
		if i < 0 || seen[i] {
			return false
		}
		seen[i] = true
		switch i {
		case 0:
			m.Seq, ok = s.uint()
		case 1:
			m.ChildHash, ok = s.plainString()
		case 2:
			m.Type, ok = s.plainString()
		case 3:
			m.ReceivedAt, ok = s.plainString()
		case 4:
			m.Via, ok = s.plainString()
		case 5:
			m.Data, ok = s.rawValue()
		case 6:
			m.Synced, ok = s.bool()
		}
		if !ok {
			return false
		}
	}
}

// CheckStrict returns the typed payload of data for a message of kind k,
// exactly as Check(k, data, Rules{Mode: ModeStrict, Window: w}) does, in
// one pass without Check's generic decoding when data is in the plain
// form; otherwise it calls Check, whose refusal is then returned.
func CheckStrict(k Kind, data []byte, w Window) (Payload, error) {
	if p, ok := scanPayload(k, data, w); ok {
		return p, nil
	}
	c, err := Check(k, data, Rules{Mode: ModeStrict, Window: w})
	return c.Payload, err
}

// scanPayload decodes data of kind k; ok is false for anything Check might
// treat otherwise than accept it as it is, including every refusal.
func scanPayload(k Kind, data []byte, w Window) (Payload, bool) {
	if !utf8.Valid(data) {
		return Payload{}, false
	}
	s := scanner{buf: data}
	var p Payload
	var ok bool
	switch k {
	case KindLocation:
		p.Location, ok = s.location(w)
	case KindSiteAccess:
		p.SiteAccess, ok = s.siteAccess(w)
	case KindScreenTime:
		p.ScreenTime, ok = s.screenTime(w)
	}
	s.space()
	return p, ok && s.pos == len(s.buf)
}

// members reads an object whose member names are all in names, each at
// most once, calling value for each; it reports which names were seen.
func (s *scanner) members(names []string, value func(i int) bool) (seen uint32, ok bool) {
	if !s.byte('{') {
		return 0, false
	}
	for first := true; ; first = false {
		if s.byte('}') {
			return seen, true
		}
		if !first && !s.byte(',') {
			return 0, false
		}
		key, ok := s.plainBytes()
		if !ok || !s.byte(':') {
			return 0, false
		}
		i := indexOfBytes(key, names)
		if i < 0 || seen&(1<<i) != 0 || !value(i) {
			return 0, false
		}
		seen |= 1 << i
	}
}

var locationFields = []string{"timestamp", "latitude", "longitude"}

func (s *scanner) location(w Window) (*Location, bool) {
	loc := &Location{}
	seen, ok := s.members(locationFields, func(i int) bool {
		var ok bool
		switch i {
		case 0:
			loc.Timestamp, ok = s.time(w)
		case 1:
			loc.Latitude, ok = s.coordinate(90)
		case 2:
			loc.Longitude, ok = s.coordinate(180)
		}
		return ok
	})
	return loc, ok && seen == 7
}

var siteAccessFields = []string{"logs"}
var visitFields = []string{"timestamp", "url", "accessed"}

func (s *scanner) siteAccess(w Window) (*SiteAccess, bool) {
	sa := &SiteAccess{}
	seen, ok := s.members(siteAccessFields, func(int) bool {
		if !s.byte('[') || s.byte(']') { // strict refuses an empty list
			return false
		}
		for {
			v, ok := s.visit(w)
			if !ok || len(sa.Logs) == MaxLogs {
				return false
			}
			sa.Logs = append(sa.Logs, v)
			if s.byte(']') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	})
	return sa, ok && seen == 1
}

func (s *scanner) visit(w Window) (SiteVisit, bool) {
	var v SiteVisit
	seen, ok := s.members(visitFields, func(i int) bool {
		var ok bool
		switch i {
		case 0:
			v.Timestamp, ok = s.time(w)
		case 1:
			v.URL, ok = s.text()
			ok = ok && v.URL != "" && len(v.URL) <= MaxURLLen && !hasControl(v.URL)
		case 2:
			v.Accessed, ok = s.bool()
		}
		return ok
	})
	return v, ok && seen == 7
}

var screenTimeFields = []string{"date", "total_screen_time", "app_wise_data"}

func (s *scanner) screenTime(w Window) (*ScreenTime, bool) {
	st := &ScreenTime{}
	seen, ok := s.members(screenTimeFields, func(i int) bool {
		var ok bool
		switch i {
		case 0:
			st.Date, ok = s.date(w)
		case 1:
			st.TotalSeconds, ok = s.count(MaxDaySeconds)
		case 2:
			st.Apps, ok = s.apps()
		}
		return ok
	})
	return st, ok && seen == 7
}

// apps reads app_wise_data: {"app id": {"hour": seconds}}.
func (s *scanner) apps() (map[string]map[int]int64, bool) {
	if !s.byte('{') {
		return nil, false
	}
	apps := map[string]map[int]int64{}
	for first := true; ; first = false {
		if s.byte('}') {
			return apps, true
		}
		if !first && !s.byte(',') {
			return nil, false
		}
		key, ok := s.plainBytes()
		if !ok || !s.byte(':') || len(apps) == MaxApps {
			return nil, false
		}
		app := string(key)
		if _, dup := apps[app]; dup || checkAppID(app) != nil {
			return nil, false
		}
		if apps[app], ok = s.hours(); !ok {
			return nil, false
		}
	}
}

// hours reads one app's {"hour": seconds}; hours are written as
// strconv.Itoa writes them, 0-23.
func (s *scanner) hours() (map[int]int64, bool) {
	if !s.byte('{') {
		return nil, false
	}
	hours := map[int]int64{}
	for first := true; ; first = false {
		if s.byte('}') {
			return hours, true
		}
		if !first && !s.byte(',') {
			return nil, false
		}
		key, ok := s.plainBytes()
		if !ok || !s.byte(':') {
			return nil, false
		}
		h, ok := canonicalHour(key)
		if _, dup := hours[h]; !ok || dup {
			return nil, false
		}
		if hours[h], ok = s.count(MaxHourSeconds); !ok {
			return nil, false
		}
	}
}

func canonicalHour(key []byte) (int, bool) {
	switch {
	case len(key) == 1 && key[0] >= '0' && key[0] <= '9':
		return int(key[0] - '0'), true
	case len(key) == 2 && key[0] >= '1' && key[0] <= '2' && key[1] >= '0' && key[1] <= '9':
		h := int(key[0]-'0')*10 + int(key[1]-'0')
		return h, h <= 23
	}
	return 0, false
}

// time reads a device time: RFC 3339 inside the window, returned in UTC.
func (s *scanner) time(w Window) (time.Time, bool) {
	b, ok := s.plainBytes()
	if !ok || len(b) == 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil || w.checkTime("", t) != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// date reads a calendar date YYYY-MM-DD inside the window.
func (s *scanner) date(w Window) (string, bool) {
	b, ok := s.plainBytes()
	if !ok || len(b) != len(DateLayout) {
		return "", false
	}
	day, err := time.Parse(DateLayout, string(b))
	if err != nil || w.checkDay("", day) != nil {
		return "", false
	}
	var canon [len(DateLayout)]byte
	if string(day.AppendFormat(canon[:0], DateLayout)) != string(b) {
		return "", false
	}
	return string(b), true
}

// coordinate reads a JSON number within ±limit.
func (s *scanner) coordinate(limit float64) (float64, bool) {
	b, ok := s.number()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(b), 64)
	return v, err == nil && v >= -limit && v <= limit
}

// count reads a whole JSON number of seconds within 0-max.
func (s *scanner) count(max int64) (int64, bool) {
	b, ok := s.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil && n >= 0 && n <= max
}

// scanner reads JSON from buf at pos; str, when set, is buf as a string,
// so that strings read are slices of it rather than copies.
type scanner struct {
	buf []byte
	str string
	pos int
}

// space skips JSON whitespace.
func (s *scanner) space() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// byte consumes c, after whitespace, when it comes next.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.pos < len(s.buf) && s.buf[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// plainBytes reads a string without escapes or control characters (which
// JSON forbids raw) and returns its contents.
func (s *scanner) plainBytes() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	for i := s.pos; i < len(s.buf); i++ {
		switch c := s.buf[i]; {
		case c == '"':
			b := s.buf[s.pos:i]
			s.pos = i + 1
			return b, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// text reads a string whose escapes, if any, are the simple ones and
// \uXXXX outside the surrogates (a URL's & is \u0026 as Go's encoder
// writes it), and returns its contents.
func (s *scanner) text() (string, bool) {
	start := s.pos
	if b, ok := s.plainBytes(); ok {
		return string(b), true
	}
	s.pos = start
	if !s.skipString() {
		return "", false
	}
	raw := s.buf[start:s.pos]
	raw = raw[bytes.IndexByte(raw, '"')+1 : len(raw)-1] // between the quotes, after any space
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := strconv.ParseUint(string(raw[i+1:i+5]), 16, 32)
			if err != nil || r >= 0xd800 && r <= 0xdfff {
				return "", false
			}
			out = utf8.AppendRune(out, rune(r))
			i += 4
		}
	}
	return string(out), true
}

// plainString is plainBytes as a string: a slice of str, or a copy. Bytes
// that are not UTF-8 are refused (encoding/json would replace them).
func (s *scanner) plainString() (string, bool) {
	b, ok := s.plainBytes()
	if !ok || !utf8.Valid(b) {
		return "", false
	}
	if s.str == "" {
		return string(b), true
	}
	end := s.pos - 1 // the closing quote
	return s.str[end-len(b) : end], true
}

// uint reads a non-negative JSON integer that fits 64 bits.
func (s *scanner) uint() (uint64, bool) {
	b, ok := s.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}

// bool reads true or false.
func (s *scanner) bool() (bool, bool) {
	s.space()
	switch {
	case hasPrefix(s.buf[s.pos:], "true"):
		s.pos += 4
		return true, true
	case hasPrefix(s.buf[s.pos:], "false"):
		s.pos += 5
		return false, true
	}
	return false, false
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, bool) {
	s.space()
	start, i := s.pos, s.pos
	digits := func() int {
		n := 0
		for i < len(s.buf) && s.buf[i] >= '0' && s.buf[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	if i < len(s.buf) && s.buf[i] == '-' {
		i++
	}
	if i < len(s.buf) && s.buf[i] == '0' {
		i++
	} else if digits() == 0 {
		return nil, false
	}
	if i < len(s.buf) && s.buf[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false
		}
	}
	if i < len(s.buf) && (s.buf[i] == 'e' || s.buf[i] == 'E') {
		i++
		if i < len(s.buf) && (s.buf[i] == '+' || s.buf[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	s.pos = i
	return s.buf[start:i], true
}

// maxDepth bounds the nesting rawValue follows; deeper data takes the
// general decoder.
const maxDepth = 32

// rawValue reads any JSON value and returns its text; nil for null.
func (s *scanner) rawValue() ([]byte, bool) {
	s.space()
	start := s.pos
	if !s.skip(0) {
		return nil, false
	}
	v := s.buf[start:s.pos]
	if string(v) == "null" {
		return nil, true
	}
	return v, true
}

// skip passes over one JSON value, checking its syntax.
func (s *scanner) skip(depth int) bool {
	s.space()
	if s.pos >= len(s.buf) || depth > maxDepth {
		return false
	}
	switch c := s.buf[s.pos]; {
	case c == '{':
		s.pos++
		for first := true; ; first = false {
			if s.byte('}') {
				return true
			}
			if (!first && !s.byte(',')) || !s.skipString() || !s.byte(':') || !s.skip(depth+1) {
				return false
			}
		}
	case c == '[':
		s.pos++
		for first := true; ; first = false {
			if s.byte(']') {
				return true
			}
			if (!first && !s.byte(',')) || !s.skip(depth+1) {
				return false
			}
		}
	case c == '"':
		return s.skipString()
	case c == 't' || c == 'f':
		_, ok := s.bool()
		return ok
	case c == 'n':
		if hasPrefix(s.buf[s.pos:], "null") {
			s.pos += 4
			return true
		}
		return false
	}
	_, ok := s.number()
	return ok
}

// skipString passes over a string, escapes included, checking them.
func (s *scanner) skipString() bool {
	if !s.byte('"') {
		return false
	}
	for i := s.pos; i < len(s.buf); i++ {
		switch c := s.buf[i]; {
		case c == '"':
			s.pos = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			i++
			if i >= len(s.buf) {
				return false
			}
			switch s.buf[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.buf) || !isHex4(s.buf[i+1:i+5]) {
					return false
				}
				i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

func indexOf(key string, names ...string) int {
	for i, n := range names {
		if key == n {
			return i
		}
	}
	return -1
}

func indexOfBytes(key []byte, names []string) int {
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	return -1
}
