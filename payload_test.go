package hearth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The seed protocol's three example payloads (docs/protocol.md).
const (
	seedScreenTime = `{"date": "2025-12-10", "total_screen_time": 3600, "app_wise_data": {"com.example.app": {"0": 1800}}}`
	seedLocation   = `{"timestamp": "2025-12-10T10:30:00Z", "latitude": 40.7128, "longitude": -74.0060}`
	seedSiteAccess = `{"logs": [{"timestamp": "2025-12-10T10:30:00Z", "url": "https://example.com", "accessed": true}]}`
)

var (
	testNow    = time.Date(2025, 12, 10, 12, 0, 0, 0, time.UTC)
	testWindow = Window{Now: testNow, MaxAge: DefaultRetention, MaxFuture: DefaultMaxFuture}
)

// Modes a case runs in.
var (
	bothModes  = []Mode{ModeSeed, ModeStrict}
	strictOnly = []Mode{ModeStrict}
)

func modeName(m Mode) string {
	switch m {
	case ModeSeed:
		return "seed"
	case ModeStrict:
		return "strict"
	}
	return fmt.Sprintf("mode%d", m)
}

// invalidCase is one refusal rule: data of kind is refused with an
// *InvalidError whose Field and Code equal field and code and whose Reason
// contains reason.
type invalidCase struct {
	name   string
	kind   Kind
	data   string
	w      Window
	field  string
	code   string // "" means CodeInvalid
	reason string
}

// runInvalid checks that every case is refused in each of modes.
func runInvalid(t *testing.T, modes []Mode, cases []invalidCase) {
	t.Helper()
	for _, m := range modes {
		for _, tc := range cases {
			t.Run(modeName(m)+"/"+tc.name, func(t *testing.T) {
				c, err := Check(tc.kind, []byte(tc.data), Rules{Mode: m, Window: tc.w})
				code := tc.code
				if code == "" {
					code = CodeInvalid
				}
				assertInvalid(t, c, err, tc.field, code, tc.reason)
			})
		}
	}
}

func assertInvalid(t *testing.T, c Checked, err error, field, code, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want refusal of %s (%s); data %s, notes %v", field, code, c.Data, c.Notes)
	}
	if c.Kind != "" || c.Data != nil || c.Notes != nil || c.Payload != (Payload{}) {
		t.Errorf("Checked %+v returned along with error", c)
	}
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error %T %q is not an *InvalidError", err, err)
	}
	if ie.Field != field || ie.Code != code {
		t.Errorf("Field, Code = %q, %q; want %q, %q (error %q)", ie.Field, ie.Code, field, code, err)
	}
	if !strings.Contains(ie.Reason, reason) {
		t.Errorf("Reason %q does not contain %q", ie.Reason, reason)
	}
	if strings.TrimSpace(ie.Reason) != ie.Reason || ie.Reason == "" {
		t.Errorf("Reason %q is empty or padded", ie.Reason)
	}
	if !IsInvalid(err) || InvalidCode(err) != code {
		t.Errorf("IsInvalid, InvalidCode = %v, %q", IsInvalid(err), InvalidCode(err))
	}
}

// mustCheck checks data in mode m and fails the test on a refusal.
func mustCheck(t *testing.T, m Mode, k Kind, data string, w Window) Checked {
	t.Helper()
	c, err := Check(k, []byte(data), Rules{Mode: m, Window: w})
	if err != nil {
		t.Fatalf("Check(%s, %s, %s): %v", modeName(m), k, clip(data), err)
	}
	if c.Kind != k {
		t.Errorf("Kind = %q, want %q", c.Kind, k)
	}
	return c
}

// mustAccept checks that data is accepted in both modes without a note
// and with the same canonical Data, and returns that Data.
func mustAccept(t *testing.T, k Kind, data string, w Window) string {
	t.Helper()
	seed := mustCheck(t, ModeSeed, k, data, w)
	strict := mustCheck(t, ModeStrict, k, data, w)
	if len(seed.Notes)+len(strict.Notes) != 0 {
		t.Errorf("%s: notes %v (seed) %v (strict), want none", clip(data), seed.Notes, strict.Notes)
	}
	if !bytes.Equal(seed.Data, strict.Data) {
		t.Errorf("%s: seed Data %s, strict Data %s", clip(data), seed.Data, strict.Data)
	}
	return string(strict.Data)
}

// seedCase is an input the seed accepted in a form that is not the
// protocol's: ModeSeed accepts it with the given notes, ModeStrict refuses
// it on field with a reason containing reason.
type seedCase struct {
	name   string
	kind   Kind
	data   string
	want   string   // canonical Data in ModeSeed; "" skips the comparison
	notes  []string // every Note as "field reason", in order
	field  string   // what ModeStrict refuses
	reason string
}

func runSeed(t *testing.T, w Window, cases []seedCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCheck(t, ModeSeed, tc.kind, tc.data, w)
			if tc.want != "" && string(c.Data) != tc.want {
				t.Errorf("seed Data\n got  %s\n want %s", c.Data, tc.want)
			}
			if got := noteList(c.Notes); fmt.Sprint(got) != fmt.Sprint(tc.notes) {
				t.Errorf("seed notes\n got  %q\n want %q", got, tc.notes)
			}
			s, err := Check(tc.kind, []byte(tc.data), Rules{Mode: ModeStrict, Window: w})
			assertInvalid(t, s, err, tc.field, CodeInvalid, tc.reason)
		})
	}
}

// noteList renders notes as "field reason".
func noteList(notes []Note) []string {
	var out []string
	for _, n := range notes {
		out = append(out, n.Field+" "+n.Reason)
	}
	return out
}

// loc returns a location payload with the given raw JSON values ("" omits a field).
func loc(ts, lat, lon string) string {
	var parts []string
	if ts != "" {
		parts = append(parts, `"timestamp":`+ts)
	}
	if lat != "" {
		parts = append(parts, `"latitude":`+lat)
	}
	if lon != "" {
		parts = append(parts, `"longitude":`+lon)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// screen returns a screen_time payload with the given raw JSON values ("" omits a field).
func screen(date, total, apps string) string {
	var parts []string
	if date != "" {
		parts = append(parts, `"date":`+date)
	}
	if total != "" {
		parts = append(parts, `"total_screen_time":`+total)
	}
	if apps != "" {
		parts = append(parts, `"app_wise_data":`+apps)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// site returns a site_access payload with one visit made of the given raw
// JSON values ("" omits a field).
func site(ts, url, accessed string) string {
	var parts []string
	if ts != "" {
		parts = append(parts, `"timestamp":`+ts)
	}
	if url != "" {
		parts = append(parts, `"url":`+url)
	}
	if accessed != "" {
		parts = append(parts, `"accessed":`+accessed)
	}
	return `{"logs":[{` + strings.Join(parts, ",") + `}]}`
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

const (
	ts0   = `"2025-12-10T10:30:00Z"`
	date0 = `"2025-12-10"`
)

// noSites is the canonical site_access without visits.
const noSites = `{"logs":[]}`

// Ensure that the seed protocol's example payloads are accepted in both
// modes without a note and come out as compact canonical JSON.
func TestCheck_SeedExamples(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		data string
		want string
	}{
		{KindScreenTime, seedScreenTime, `{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":{"com.example.app":{"0":1800}}}`},
		{KindLocation, seedLocation, `{"timestamp":"2025-12-10T10:30:00Z","latitude":40.7128,"longitude":-74.006}`},
		{KindSiteAccess, seedSiteAccess, `{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com","accessed":true}]}`},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			for _, w := range []Window{{}, testWindow} {
				if got := mustAccept(t, tc.kind, tc.data, w); got != tc.want {
					t.Errorf("got  %s\nwant %s", got, tc.want)
				}
			}
		})
	}
}

// Ensure that an unknown kind is refused in both modes with Code
// unknown_type on the "type" field, naming the kind.
func TestCheck_UnknownKind(t *testing.T) {
	for _, k := range []Kind{"", "ping", "auth", "Location", "screen-time", "location "} {
		for _, m := range bothModes {
			t.Run(fmt.Sprintf("%s/%q", modeName(m), k), func(t *testing.T) {
				c, err := Check(k, []byte(seedLocation), Rules{Mode: m})
				assertInvalid(t, c, err, "type", CodeUnknownType, fmt.Sprintf("unknown message type %q", k))
			})
		}
	}
	// A hostile kind must not inflate the reason.
	_, err := Check(Kind(strings.Repeat("k", 5000)), []byte(seedLocation), Rules{})
	if n := len(err.Error()); n > 200 {
		t.Errorf("reason for a 5000-byte kind is %d bytes long", n)
	}
}

// Ensure that a payload that is not a JSON object is refused for every
// kind in both modes, on the field "data".
func TestCheck_Data_NotObject(t *testing.T) {
	inputs := []struct{ name, data, reason string }{
		{"list", `[{"date":"2025-12-10"}]`, "must be a JSON object"},
		{"empty list", `[]`, "must be a JSON object"},
		{"string", `"{}"`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"number", `42`, "must be a JSON object"},
		{"bool", `true`, "must be a JSON object"},
		{"empty", ``, "must be a JSON object"},
		{"whitespace", " \n\t ", "must be a JSON object"},
		{"invalid JSON", `{"date":}`, "is not valid JSON"},
		{"truncated", `{"date":"2025-12-10"`, "is not valid JSON"},
		{"trailing data", `{} {}`, "is not valid JSON"},
		{"trailing garbage", `{}x`, "is not valid JSON"},
		{"single quotes", `{'date':'2025-12-10'}`, "is not valid JSON"},
		{"invalid UTF-8", "{\"date\":\"\xff\"}", "is not valid UTF-8"},
		{"invalid UTF-8 in a key", "{\"\xc3\":1}", "is not valid UTF-8"},
	}
	var cases []invalidCase
	for _, k := range Kinds {
		for _, in := range inputs {
			cases = append(cases, invalidCase{string(k) + "/" + in.name, k, in.data, Window{}, "data", "", in.reason})
		}
	}
	runInvalid(t, bothModes, cases)
}

// Ensure that the screen_time date must be a real calendar date: written
// YYYY-MM-DD in ModeStrict, also YYYY-M-D in ModeSeed (as Django's
// parse_date read it).
func TestCheck_ScreenTime_Date(t *testing.T) {
	st := KindScreenTime
	apps := "{}"
	runInvalid(t, bothModes, []invalidCase{
		{"missing", st, screen("", "0", apps), Window{}, "date", "", "is required (YYYY-MM-DD)"},
		{"null", st, screen("null", "0", apps), Window{}, "date", "", "is required (YYYY-MM-DD)"},
		{"empty", st, screen(`""`, "0", apps), Window{}, "date", "", "is required (YYYY-MM-DD)"},
		{"number", st, screen("20251210", "0", apps), Window{}, "date", "", "must be a string"},
		{"list", st, screen(`["2025-12-10"]`, "0", apps), Window{}, "date", "", "must be a string"},
		{"slashes", st, screen(`"2025/12/10"`, "0", apps), Window{}, "date", "", `"2025/12/10" is not a date in the form YYYY-MM-DD`},
		{"day first", st, screen(`"10-12-2025"`, "0", apps), Window{}, "date", "", "YYYY-MM-DD"},
		{"with time", st, screen(`"2025-12-10T00:00:00Z"`, "0", apps), Window{}, "date", "", "YYYY-MM-DD"},
		{"trailing space", st, screen(`"2025-12-10 "`, "0", apps), Window{}, "date", "", "YYYY-MM-DD"},
		{"leading space", st, screen(`" 2025-12-10"`, "0", apps), Window{}, "date", "", "YYYY-MM-DD"},
		{"two-digit year", st, screen(`"25-12-10"`, "0", apps), Window{}, "date", "", "YYYY-MM-DD"},
		{"three-digit day", st, screen(`"2025-12-010"`, "0", apps), Window{}, "date", "", "YYYY-MM-DD"},
		{"February 30", st, screen(`"2025-02-30"`, "0", apps), Window{}, "date", "", `"2025-02-30" is not a date`},
		{"February 29 of a common year", st, screen(`"2025-02-29"`, "0", apps), Window{}, "date", "", "is not a date"},
		{"February 29 of a common year, seed form", st, screen(`"2025-2-29"`, "0", apps), Window{}, "date", "", "is not a date"},
		{"April 31", st, screen(`"2025-04-31"`, "0", apps), Window{}, "date", "", "is not a date"},
		{"month 13", st, screen(`"2025-13-01"`, "0", apps), Window{}, "date", "", "is not a date"},
		{"day 0", st, screen(`"2025-12-00"`, "0", apps), Window{}, "date", "", "is not a date"},
		{"garbage", st, screen(`"yesterday"`, "0", apps), Window{}, "date", "", `"yesterday" is not a date`},
		{"Arabic-Indic digits", st, screen(`"٢٠٢٥-١٢-١٠"`, "0", apps), Window{}, "date", "", "is not a date"},
		{"long garbage is clipped", st, screen(quote(strings.Repeat("x", 5000)), "0", apps), Window{}, "date", "", "…"},
		{"year 1999", st, screen(`"1999-12-31"`, "0", apps), Window{}, "date", CodeTooOld, "1999-12-31 is before 2000"},
		{"year 0", st, screen(`"0000-01-01"`, "0", apps), Window{}, "date", CodeTooOld, "is before 2000"},
		{"year 2100", st, screen(`"2100-01-01"`, "0", apps), Window{}, "date", CodeFuture, "2100-01-01 is not before 2100"},
		{"year 9999", st, screen(`"9999-12-31"`, "0", apps), Window{}, "date", CodeFuture, "is not before 2100"},
	})
	for _, ok := range []string{"2024-02-29", "2025-12-31", "2025-01-01", "2000-01-01", "2099-12-31"} {
		got := mustAccept(t, st, screen(quote(ok), "0", apps), Window{})
		if want := screen(quote(ok), "0", apps); got != want {
			t.Errorf("date %s: got %s, want %s", ok, got, want)
		}
	}
	runSeed(t, Window{}, []seedCase{
		{"no zero padding", st, screen(`"2025-2-3"`, "0", apps), screen(`"2025-02-03"`, "0", apps),
			[]string{"date date_form"}, "date", `"2025-2-3" is not in the form YYYY-MM-DD`},
		{"month padded only", st, screen(`"2025-01-5"`, "0", apps), screen(`"2025-01-05"`, "0", apps),
			[]string{"date date_form"}, "date", "is not in the form YYYY-MM-DD"},
		{"leap day", st, screen(`"2024-2-29"`, "0", apps), screen(`"2024-02-29"`, "0", apps),
			[]string{"date date_form"}, "date", "is not in the form YYYY-MM-DD"},
	})
	// The seed form still meets the absolute bounds.
	runInvalid(t, []Mode{ModeSeed}, []invalidCase{
		{"seed form before 2000", st, screen(`"1999-1-1"`, "0", apps), Window{}, "date", CodeTooOld, "1999-01-01 is before 2000"},
	})
	// A hostile value must not inflate the reason.
	_, err := Check(st, []byte(screen(quote(strings.Repeat("x", 5000)), "0", apps)), Rules{})
	if n := len(err.Error()); n > 200 {
		t.Errorf("reason for a 5000-byte date is %d bytes long", n)
	}
}

// Ensure that timestamps must be RFC 3339 with a time zone in ModeStrict,
// for locations and for each site visit; fractional seconds and offsets
// are accepted and come out in UTC.
func TestCheck_Timestamp_Format(t *testing.T) {
	bad := []struct{ name, ts, reason string }{
		{"zone name", `"2025-12-10T10:30:00 UTC"`, `"2025-12-10T10:30:00 UTC" is not an RFC 3339 time with a zone`},
		{"hour 25", `"2025-12-10T25:30:00Z"`, "is not an RFC 3339 time"},
		{"second 60", `"2025-12-10T10:30:60Z"`, "is not an RFC 3339 time"},
		{"February 30", `"2025-02-30T10:30:00Z"`, "is not an RFC 3339 time"},
		{"lower-case t and z", `"2025-12-10t10:30:00z"`, "is not an RFC 3339 time"},
		{"garbage", `"now"`, `"now" is not an RFC 3339 time with a zone (2025-12-10T10:30:00Z)`},
		{"unix seconds string", `"1765362600"`, "is not an RFC 3339 time"},
		{"one-digit month", `"2025-1-5T10:30:00Z"`, "is not an RFC 3339 time"},
		{"long garbage is clipped", quote(strings.Repeat("9", 5000)), "…"},
	}
	var cases []invalidCase
	for _, b := range bad {
		cases = append(cases,
			invalidCase{"location/" + b.name, KindLocation, loc(b.ts, "1", "2"), Window{}, "timestamp", "", b.reason},
			invalidCase{"site_access/" + b.name, KindSiteAccess, site(b.ts, `"https://a"`, "true"), Window{}, "logs[0].timestamp", "", b.reason})
	}
	cases = append(cases,
		invalidCase{"location/missing", KindLocation, loc("", "1", "2"), Window{}, "timestamp", "", "is required (RFC 3339 with a time zone)"},
		invalidCase{"location/null", KindLocation, loc("null", "1", "2"), Window{}, "timestamp", "", "is required (RFC 3339 with a time zone)"},
		invalidCase{"location/empty", KindLocation, loc(`""`, "1", "2"), Window{}, "timestamp", "", "is required (RFC 3339 with a time zone)"},
		invalidCase{"location/number", KindLocation, loc("1765362600", "1", "2"), Window{}, "timestamp", "", "must be a string"},
		invalidCase{"site_access/number", KindSiteAccess, site("0", `"https://a"`, "true"), Window{}, "logs[0].timestamp", "", "must be a string"},
		invalidCase{"site_access/object", KindSiteAccess, site("{}", `"https://a"`, "true"), Window{}, "logs[0].timestamp", "", "must be a string"},
	)
	runInvalid(t, bothModes, cases)

	for _, ok := range []struct{ ts, utc string }{
		{`"2025-12-10T10:30:00Z"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-10T10:30:00.5Z"`, "2025-12-10T10:30:00.5Z"},
		{`"2025-12-10T10:30:00.123456789Z"`, "2025-12-10T10:30:00.123456789Z"},
		{`"2025-12-10T10:30:00.000Z"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-10T11:30:00+01:00"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-10T16:00:00+05:30"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-10T05:00:00.25-05:30"`, "2025-12-10T10:30:00.25Z"},
		{`"2025-12-10T10:30:00-00:00"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-11T00:30:00+14:00"`, "2025-12-10T10:30:00Z"},
		{`"2000-01-01T00:00:00Z"`, "2000-01-01T00:00:00Z"},
		{`"2099-12-31T23:59:59.999999999Z"`, "2099-12-31T23:59:59.999999999Z"},
		{`"2000-01-01T01:00:00+01:00"`, "2000-01-01T00:00:00Z"},
	} {
		got := mustAccept(t, KindLocation, loc(ok.ts, "1", "2"), Window{})
		if want := loc(quote(ok.utc), "1", "2"); got != want {
			t.Errorf("%s: got %s, want %s", ok.ts, got, want)
		}
		got = mustAccept(t, KindSiteAccess, site(ok.ts, `"u"`, "false"), Window{})
		if want := site(quote(ok.utc), `"u"`, "false"); got != want {
			t.Errorf("%s: got %s, want %s", ok.ts, got, want)
		}
	}
}

// Ensure that ModeSeed takes the other time forms Django's DateTimeField
// accepted (no zone as UTC, a space for the T, ±HHMM and ±HH zones, no
// seconds, a bare date), noting each, and that ModeStrict refuses them.
func TestCheck_Timestamp_SeedForms(t *testing.T) {
	forms := []struct {
		name, ts, utc, reason string
	}{
		{"no zone", `"2025-12-10T10:30:00"`, "2025-12-10T10:30:00Z", NoteTimeNoZone},
		{"no zone fractional", `"2025-12-10T10:30:00.5"`, "2025-12-10T10:30:00.5Z", NoteTimeNoZone},
		{"no zone no seconds", `"2025-12-10T10:30"`, "2025-12-10T10:30:00Z", NoteTimeNoZone},
		{"space separator", `"2025-12-10 10:30:00Z"`, "2025-12-10T10:30:00Z", NoteTimeForm},
		{"space separator no zone", `"2025-12-10 10:30:00"`, "2025-12-10T10:30:00Z", NoteTimeNoZone},
		{"space separator and offset", `"2025-12-10 11:30:00+01:00"`, "2025-12-10T10:30:00Z", NoteTimeForm},
		{"zone without colon", `"2025-12-10T11:30:00+0100"`, "2025-12-10T10:30:00Z", NoteTimeForm},
		{"zone without colon, half hour", `"2025-12-10T16:00:00.5+0530"`, "2025-12-10T10:30:00.5Z", NoteTimeForm},
		{"zone hours only", `"2025-12-10T05:30:00-05"`, "2025-12-10T10:30:00Z", NoteTimeForm},
		{"no seconds", `"2025-12-10T10:30Z"`, "2025-12-10T10:30:00Z", NoteTimeForm},
		{"no seconds with offset", `"2025-12-10T11:30+01:00"`, "2025-12-10T10:30:00Z", NoteTimeForm},
		{"date only", `"2025-12-10"`, "2025-12-10T00:00:00Z", NoteTimeNoZone},
	}
	var cases []seedCase
	for _, f := range forms {
		refusal := fmt.Sprintf("%s is not an RFC 3339 time with a zone", f.ts)
		cases = append(cases,
			seedCase{"location/" + f.name, KindLocation, loc(f.ts, "1", "2"), loc(quote(f.utc), "1", "2"),
				[]string{"timestamp " + f.reason}, "timestamp", refusal},
			seedCase{"site_access/" + f.name, KindSiteAccess, site(f.ts, `"u"`, "true"), site(quote(f.utc), `"u"`, "true"),
				[]string{"logs[0].timestamp " + f.reason}, "logs[0].timestamp", refusal})
	}
	runSeed(t, Window{}, cases)

	// The note says what the time was taken as.
	c := mustCheck(t, ModeSeed, KindLocation, loc(`"2025-12-10T10:30:00"`, "1", "2"), Window{})
	if n := c.Notes[0]; n.Ignored || !strings.Contains(n.Text, "UTC (2025-12-10T10:30:00Z)") {
		t.Errorf("note %+v", n)
	}
	// A seed form is held to the same bounds once its zone is applied.
	runInvalid(t, []Mode{ModeSeed}, []invalidCase{
		{"no zone before 2000", KindLocation, loc(`"1999-12-31T23:59:59"`, "1", "2"), Window{}, "timestamp", CodeTooOld, "is before 2000"},
		{"offset crosses 2100", KindLocation, loc(`"2099-12-31T23:30:00-0100"`, "1", "2"), Window{}, "timestamp", CodeFuture, "is not before 2100"},
		{"date only in the future", KindSiteAccess, site(`"2025-12-11"`, `"u"`, "true"), testWindow, "logs[0].timestamp", CodeFuture, "is in the future"},
	})
}

// Ensure that device times are held to the absolute bounds 2000-01-01 ≤ t
// < 2100-01-01 in UTC in both modes, whatever the window.
func TestCheck_Timestamp_AbsoluteBounds(t *testing.T) {
	var cases []invalidCase
	for _, tc := range []struct {
		name, ts, code, reason string
	}{
		{"year 1", `"0001-01-01T00:00:00Z"`, CodeTooOld, "0001-01-01T00:00:00Z is before 2000"},
		{"year 0 with offset", `"0000-01-01T00:00:00+00:01"`, CodeTooOld, "is before 2000"},
		{"1970", `"1970-01-01T00:00:00Z"`, CodeTooOld, "is before 2000"},
		{"a nanosecond before 2000", `"1999-12-31T23:59:59.999999999Z"`, CodeTooOld, "is before 2000"},
		{"offset pushes before 2000", `"2000-01-01T00:30:00+01:00"`, CodeTooOld, "is before 2000"},
		{"2100", `"2100-01-01T00:00:00Z"`, CodeFuture, "2100-01-01T00:00:00Z is not before 2100"},
		{"offset pushes into 2100", `"2099-12-31T23:30:00-01:00"`, CodeFuture, "is not before 2100"},
		{"year 9999", `"9999-12-31T23:59:59Z"`, CodeFuture, "is not before 2100"},
		{"year 9999 with offset", `"9999-12-31T23:59:00-01:00"`, CodeFuture, "is not before 2100"},
	} {
		for _, w := range []Window{{}, testWindow, {Now: testNow}} {
			name := fmt.Sprintf("%s/window %v", tc.name, !w.Now.IsZero())
			cases = append(cases,
				invalidCase{"location/" + name, KindLocation, loc(tc.ts, "1", "2"), w, "timestamp", tc.code, tc.reason},
				invalidCase{"site_access/" + name, KindSiteAccess, site(tc.ts, `"u"`, "true"), w, "logs[0].timestamp", tc.code, tc.reason})
		}
	}
	runInvalid(t, bothModes, cases)
}

// Ensure that latitude and longitude are finite numbers within ±90 and
// ±180, the edges included, in both modes.
func TestCheck_Location_Range(t *testing.T) {
	L := KindLocation
	runInvalid(t, bothModes, []invalidCase{
		{"latitude above 90", L, loc(ts0, "90.0000001", "0"), Window{}, "latitude", "", "90.0000001 is outside -90..90"},
		{"latitude below -90", L, loc(ts0, "-90.5", "0"), Window{}, "latitude", "", "-90.5 is outside -90..90"},
		{"latitude 1000", L, loc(ts0, "1000", "0"), Window{}, "latitude", "", "is outside -90..90"},
		{"longitude above 180", L, loc(ts0, "0", "180.0000001"), Window{}, "longitude", "", "is outside -180..180"},
		{"longitude below -180", L, loc(ts0, "0", "-181"), Window{}, "longitude", "", "-181 is outside -180..180"},
		{"latitude overflows float64", L, loc(ts0, "1e400", "0"), Window{}, "latitude", "", "must be a number, not 1e400"},
		{"longitude overflows float64", L, loc(ts0, "0", "-1e400"), Window{}, "longitude", "", "must be a number, not -1e400"},
	})
	for _, ok := range [][2]string{{"90", "180"}, {"-90", "-180"}, {"0", "0"}, {"-0", "-0"}, {"89.999999", "-179.999999"}, {"1e-300", "5E1"}} {
		mustAccept(t, L, loc(ts0, ok[0], ok[1]), Window{})
	}
	// Python's float() read numbers in strings too; NaN and infinity are
	// refused there as everywhere.
	runInvalid(t, []Mode{ModeSeed}, []invalidCase{
		{"latitude out of range in a string", L, loc(ts0, `"91"`, "0"), Window{}, "latitude", "", "91 is outside -90..90"},
		{"latitude NaN string", L, loc(ts0, `"NaN"`, "0"), Window{}, "latitude", "", "NaN is outside -90..90"},
		{"longitude infinity string", L, loc(ts0, "0", `"-inf"`), Window{}, "longitude", "", "-Inf is outside -180..180"},
	})
}

// Ensure that a missing, null or non-number coordinate is refused in both
// modes, and that a number in a string is taken in ModeSeed only.
func TestCheck_Location_Required(t *testing.T) {
	L := KindLocation
	runInvalid(t, bothModes, []invalidCase{
		{"latitude missing", L, loc(ts0, "", "0"), Window{}, "latitude", "", "is required"},
		{"longitude missing", L, loc(ts0, "0", ""), Window{}, "longitude", "", "is required"},
		{"latitude null", L, loc(ts0, "null", "0"), Window{}, "latitude", "", "is required"},
		{"longitude null", L, loc(ts0, "0", "null"), Window{}, "longitude", "", "is required"},
		{"latitude bool", L, loc(ts0, "true", "0"), Window{}, "latitude", "", "must be a number, not true"},
		{"longitude object", L, loc(ts0, "0", "{}"), Window{}, "longitude", "", "must be a number, not {}"},
		{"longitude list", L, loc(ts0, "0", "[1]"), Window{}, "longitude", "", "must be a number, not [1]"},
		{"latitude not a number in a string", L, loc(ts0, `"north"`, "0"), Window{}, "latitude", "", `must be a number, not "north"`},
		{"latitude empty string", L, loc(ts0, `""`, "0"), Window{}, "latitude", "", `must be a number, not ""`},
		{"latitude NaN literal", L, loc(ts0, "NaN", "0"), Window{}, "data", "", "is not valid JSON"},
		{"latitude Infinity literal", L, loc(ts0, "Infinity", "0"), Window{}, "data", "", "is not valid JSON"},
	})
	runSeed(t, Window{}, []seedCase{
		{"latitude string", L, loc(ts0, `"40.7"`, "0"), loc(ts0, "40.7", "0"),
			[]string{"latitude number_in_string"}, "latitude", "must be a JSON number, not a string"},
		{"longitude string", L, loc(ts0, "0", `"-74.0"`), loc(ts0, "0", "-74"),
			[]string{"longitude number_in_string"}, "longitude", "must be a JSON number, not a string"},
		{"both strings with spaces", L, loc(ts0, `" 1.5 "`, `"2e1"`), loc(ts0, "1.5", "20"),
			[]string{"latitude number_in_string", "longitude number_in_string"}, "latitude", "must be a JSON number"},
	})
}

// Ensure that a hostile huge number literal cannot inflate the reason: the
// literal is clipped.
func TestCheck_Location_HugeNumberClipped(t *testing.T) {
	huge := "1" + strings.Repeat("0", 100000) + "e400"
	for _, m := range bothModes {
		_, err := Check(KindLocation, []byte(loc(ts0, huge, "0")), Rules{Mode: m})
		if err == nil {
			t.Fatal("accepted a latitude of 1e100400")
		}
		if n := len(err.Error()); n > 200 {
			t.Errorf("reason is %d bytes long: %.120s…", n, err)
		}
	}
}

// Ensure that the day total is a required, non-negative number of seconds
// of at most 86400; ModeSeed truncates a fraction as Python's int() did.
func TestCheck_ScreenTime_Total(t *testing.T) {
	st := KindScreenTime
	d := date0
	runInvalid(t, bothModes, []invalidCase{
		{"missing", st, screen(d, "", "{}"), Window{}, "total_screen_time", "", "is required (seconds)"},
		{"null", st, screen(d, "null", "{}"), Window{}, "total_screen_time", "", "is required (seconds)"},
		{"negative", st, screen(d, "-1", "{}"), Window{}, "total_screen_time", "", "-1 seconds is outside 0-86400"},
		{"above a day", st, screen(d, "86401", "{}"), Window{}, "total_screen_time", "", "86401 seconds is outside 0-86400"},
		{"above a day by a fraction", st, screen(d, "86401.5", "{}"), Window{}, "total_screen_time", "", "86401.5"},
		{"far above a day", st, screen(d, "9223372036854775807", "{}"), Window{}, "total_screen_time", "", "is outside 0-86400"},
		{"beyond int64", st, screen(d, "99999999999999999999", "{}"), Window{}, "total_screen_time", "", "99999999999999999999 is out of range"},
		{"beyond float64", st, screen(d, "1e400", "{}"), Window{}, "total_screen_time", "", "1e400 is out of range"},
		{"bool", st, screen(d, "true", "{}"), Window{}, "total_screen_time", "", "whole number of seconds, not true"},
		{"object", st, screen(d, "{}", "{}"), Window{}, "total_screen_time", "", "whole number of seconds, not {}"},
		{"list", st, screen(d, "[3600]", "{}"), Window{}, "total_screen_time", "", "whole number of seconds, not [3600]"},
		{"long literal is clipped", st, screen(d, "1"+strings.Repeat("0", 5000), "{}"), Window{}, "total_screen_time", "", "…"},
	})
	for _, ok := range []struct{ in, want string }{
		{"0", "0"}, {"86400", "86400"}, {"3600.0", "3600"}, {"36e2", "3600"}, {"-0", "0"}, {"8.64E4", "86400"}, {"-0.0", "0"},
	} {
		if got, want := mustAccept(t, st, screen(d, ok.in, "{}"), Window{}), screen(d, ok.want, "{}"); got != want {
			t.Errorf("total %s: got %s, want %s", ok.in, got, want)
		}
	}
	runSeed(t, Window{}, []seedCase{
		{"fractional", st, screen(d, "3600.7", "{}"), screen(d, "3600", "{}"),
			[]string{"total_screen_time fractional_seconds"}, "total_screen_time", "3600.7 is not a whole number of seconds"},
		{"tiny fraction", st, screen(d, "0.000001", "{}"), screen(d, "0", "{}"),
			[]string{"total_screen_time fractional_seconds"}, "total_screen_time", "is not a whole number of seconds"},
		{"fractional exponent", st, screen(d, "1e-1", "{}"), screen(d, "0", "{}"),
			[]string{"total_screen_time fractional_seconds"}, "total_screen_time", "is not a whole number of seconds"},
		{"negative fraction truncates to zero", st, screen(d, "-0.5", "{}"), screen(d, "0", "{}"),
			[]string{"total_screen_time fractional_seconds"}, "total_screen_time", "-0.5 is not a whole number of seconds"},
		{"a day and a fraction", st, screen(d, "86400.9", "{}"), screen(d, "86400", "{}"),
			[]string{"total_screen_time fractional_seconds"}, "total_screen_time", "is not a whole number of seconds"},
		{"long fraction is clipped", st, screen(d, "1."+strings.Repeat("5", 5000), "{}"), screen(d, "1", "{}"),
			[]string{"total_screen_time fractional_seconds"}, "total_screen_time", "…"},
	})
}

// Ensure that a number in a string is taken as the number in ModeSeed (as
// Python's int() read it) and refused in ModeStrict, and that a string
// that is no whole number is refused in both modes.
func TestCheck_ScreenTime_SecondsString(t *testing.T) {
	st := KindScreenTime
	d := date0
	runInvalid(t, bothModes, []invalidCase{
		{"total words", st, screen(d, `"an hour"`, "{}"), Window{}, "total_screen_time", "", `not "an hour"`},
		{"total fraction in a string", st, screen(d, `"3600.5"`, "{}"), Window{}, "total_screen_time", "", `not "3600.5"`},
		{"total empty string", st, screen(d, `""`, "{}"), Window{}, "total_screen_time", "", `not ""`},
	})
	runInvalid(t, []Mode{ModeSeed}, []invalidCase{
		{"total negative in a string", st, screen(d, `"-5"`, "{}"), Window{}, "total_screen_time", "", "-5 seconds is outside 0-86400"},
	})
	runSeed(t, Window{}, []seedCase{
		{"total", st, screen(d, `"3600"`, "{}"), screen(d, "3600", "{}"),
			[]string{"total_screen_time number_in_string"}, "total_screen_time", "must be a JSON number, not a string"},
		{"total with spaces", st, screen(d, `" 60 "`, "{}"), screen(d, "60", "{}"),
			[]string{"total_screen_time number_in_string"}, "total_screen_time", "must be a JSON number, not a string"},
		{"hour", st, screen(d, "0", `{"a":{"0":"1800"}}`), screen(d, "0", `{"a":{"0":1800}}`),
			[]string{"app_wise_data.a.0 number_in_string"}, "app_wise_data.a.0", "must be a JSON number, not a string"},
		{"hour words", st, screen(d, "0", `{"a":{"0":"x","1":5}}`), screen(d, "0", `{"a":{"1":5}}`),
			[]string{"app_wise_data.a.0 bad_seconds"}, "app_wise_data.a.0", `not "x"`},
	})
}

// Ensure that hour keys are exactly "0".."23" in ModeStrict; that ModeSeed
// takes the forms Python's int() read ("07") and skips the others; and
// that hour values are whole seconds in 0..3600.
func TestCheck_ScreenTime_Hours(t *testing.T) {
	st := KindScreenTime
	d := date0
	app := func(hours string) string { return screen(d, "0", `{"com.a":`+hours+`}`) }
	var cases []seedCase
	for _, h := range []string{"24", "-1", "x", "", "1.0", "1e1", "٣", "99999999999999999999", "0x1"} {
		cases = append(cases, seedCase{"bad hour " + quote(h), st, app(`{` + quote(h) + `:1,"5":2}`), app(`{"5":2}`),
			[]string{"app_wise_data.com.a." + h + " bad_hour"}, "app_wise_data.com.a." + h, fmt.Sprintf("%q is not an hour 0-23", h)})
	}
	for _, h := range []struct{ key, as string }{{"01", "1"}, {"00", "0"}, {"07", "7"}, {" 1", "1"}, {"1 ", "1"}, {"+1", "1"}, {"-0", "0"}, {"023", "23"}} {
		cases = append(cases, seedCase{"hour form " + quote(h.key), st, app(`{` + quote(h.key) + `:9}`), app(`{"` + h.as + `":9}`),
			[]string{"app_wise_data.com.a." + h.key + " hour_form"}, "app_wise_data.com.a." + h.key, fmt.Sprintf("hour must be written %q", h.as)})
	}
	cases = append(cases,
		seedCase{"seconds fractional", st, app(`{"0":0.5,"1":1800.9}`), app(`{"0":0,"1":1800}`),
			[]string{"app_wise_data.com.a.0 fractional_seconds", "app_wise_data.com.a.1 fractional_seconds"}, "app_wise_data.com.a.0", "0.5 is not a whole number of seconds"},
		seedCase{"seconds null", st, app(`{"0":null}`), app(`{}`),
			[]string{"app_wise_data.com.a.0 bad_seconds"}, "app_wise_data.com.a.0", "must be a whole number of seconds, not null"},
		seedCase{"seconds bool", st, app(`{"0":false}`), app(`{}`),
			[]string{"app_wise_data.com.a.0 bad_seconds"}, "app_wise_data.com.a.0", "whole number of seconds, not false"},
		seedCase{"seconds list", st, app(`{"0":[1]}`), app(`{}`),
			[]string{"app_wise_data.com.a.0 bad_seconds"}, "app_wise_data.com.a.0", "whole number of seconds, not [1]"},
		seedCase{"seconds object", st, app(`{"0":{}}`), app(`{}`),
			[]string{"app_wise_data.com.a.0 bad_seconds"}, "app_wise_data.com.a.0", "whole number of seconds, not {}"},
		seedCase{"seconds beyond float64", st, app(`{"0":1e400}`), app(`{}`),
			[]string{"app_wise_data.com.a.0 bad_seconds"}, "app_wise_data.com.a.0", "1e400 is out of range"},
		seedCase{"hours a list", st, app(`[1800]`), screen(d, "0", "{}"),
			[]string{"app_wise_data.com.a not_an_object"}, "app_wise_data.com.a", "must be an object of hour → seconds"},
		seedCase{"hours null", st, app(`null`), screen(d, "0", "{}"),
			[]string{"app_wise_data.com.a not_an_object"}, "app_wise_data.com.a", "must be an object of hour → seconds"},
		seedCase{"hours a number", st, app(`1800`), screen(d, "0", "{}"),
			[]string{"app_wise_data.com.a not_an_object"}, "app_wise_data.com.a", "must be an object of hour → seconds"},
		seedCase{"hours a string", st, app(`"{}"`), screen(d, "0", "{}"),
			[]string{"app_wise_data.com.a not_an_object"}, "app_wise_data.com.a", "must be an object of hour → seconds"},
		// "07" and "7" name the same hour: the first in key order is
		// kept, the other is noted. (The seed stored the last one in the
		// document; JSON objects are unordered, so hearth does not.)
		seedCase{"duplicate hour", st, app(`{"7":20,"07":10}`), app(`{"7":10}`),
			[]string{"app_wise_data.com.a.07 hour_form", "app_wise_data.com.a.7 duplicate"}, "app_wise_data.com.a.07", `hour must be written "7"`},
		// A skipped hour does not make a later one a duplicate.
		seedCase{"duplicate of a skipped hour", st, app(`{"07":"x","7":20}`), app(`{"7":20}`),
			[]string{"app_wise_data.com.a.07 hour_form", "app_wise_data.com.a.07 bad_seconds"}, "app_wise_data.com.a.07", `hour must be written "7"`},
	)
	runSeed(t, Window{}, cases)

	runInvalid(t, bothModes, []invalidCase{
		{"seconds above an hour", st, app(`{"5":3601}`), Window{}, "app_wise_data.com.a.5", "", "3601 seconds is outside 0-3600"},
		{"seconds negative", st, app(`{"23":-5}`), Window{}, "app_wise_data.com.a.23", "", "-5 seconds is outside 0-3600"},
		{"seconds far negative", st, app(`{"23":-1e15}`), Window{}, "app_wise_data.com.a.23", "", "is outside 0-3600"},
	})
	runInvalid(t, []Mode{ModeSeed}, []invalidCase{
		{"seconds above an hour in a string", st, app(`{"5":"3601"}`), Window{}, "app_wise_data.com.a.5", "", "3601 seconds is outside 0-3600"},
		{"seconds above an hour under a seed hour", st, app(`{"05":3601}`), Window{}, "app_wise_data.com.a.05", "", "3601 seconds is outside 0-3600"},
	})

	var all []string
	for h := 0; h < 24; h++ {
		all = append(all, fmt.Sprintf(`"%d":3600`, h))
	}
	mustAccept(t, st, app("{"+strings.Join(all, ",")+"}"), Window{})
	mustAccept(t, st, app(`{}`), Window{})
	if got, want := mustAccept(t, st, app(`{"0":0,"23":3600,"7":3.6e3}`), Window{}), app(`{"0":0,"23":3600,"7":3600}`); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// Ensure that hours summing past the day total are accepted as given in
// both modes: the seed stored both and so does hearth.
func TestCheck_ScreenTime_HoursPastTotal(t *testing.T) {
	in := screen(date0, "60", `{"a":{"0":3600,"1":3600},"b":{"0":3600}}`)
	if got, want := mustAccept(t, KindScreenTime, in, testWindow), `{"date":"2025-12-10","total_screen_time":60,"app_wise_data":{"a":{"0":3600,"1":3600},"b":{"0":3600}}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// Ensure that app ids are 1-255 bytes without NUL, C0 or DEL, and that at
// most MaxApps apps are accepted, in both modes.
func TestCheck_ScreenTime_Apps(t *testing.T) {
	st := KindScreenTime
	d := date0
	apps := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"app.%d":{"0":1}`, i)
		}
		b.WriteString("}")
		return b.String()
	}
	runInvalid(t, bothModes, []invalidCase{
		{"empty app id", st, screen(d, "0", `{"":{"0":1}}`), Window{}, "app_wise_data", "", "app id must not be empty"},
		{"app id too long", st, screen(d, "0", `{`+quote(strings.Repeat("a", MaxAppIDLen+1))+`:{}}`), Window{},
			"app_wise_data." + strings.Repeat("a", 64) + "…", "", "app id longer than 255 bytes"},
		{"app id too long in multibyte runes", st, screen(d, "0", `{`+quote(strings.Repeat("é", 128))+`:{}}`), Window{},
			"app_wise_data." + strings.Repeat("é", 32) + "…", "", "longer than 255 bytes"},
		{"app id with NUL", st, screen(d, "0", `{"a\u0000b":{"0":1}}`), Window{}, `app_wise_data."a\x00b"`, "", "app id contains a control character (NUL, C0 or DEL)"},
		{"app id with tab", st, screen(d, "0", `{"a\tb":{}}`), Window{}, `app_wise_data."a\tb"`, "", "control character"},
		{"app id with newline", st, screen(d, "0", `{"a\nb":{}}`), Window{}, `app_wise_data."a\nb"`, "", "control character"},
		{"app id with unit separator", st, screen(d, "0", `{"a\u001f":{}}`), Window{}, `app_wise_data."a\x1f"`, "", "control character"},
		{"app id with DEL", st, screen(d, "0", "{\"a\x7f\":{}}"), Window{}, `app_wise_data."a\x7f"`, "", "control character"},
		{"too many apps", st, screen(d, "0", apps(MaxApps+1)), Window{}, "app_wise_data", "", "has 1001 apps; at most 1000 allowed"},
	})
	mustAccept(t, st, screen(d, "0", `{`+quote(strings.Repeat("a", MaxAppIDLen))+`:{}}`), Window{})
	mustAccept(t, st, screen(d, "0", `{`+quote(strings.Repeat("é", 127))+`:{}}`), Window{})
	mustAccept(t, st, screen(d, "0", apps(MaxApps)), Window{})
	// Unicode, quotes, spaces and C1 characters are not control characters of C0.
	for _, id := range []string{"ünïcødé ✓ 😀", `"quoted"`, "with space", `C:\path`, "a\u0085b", "a\u2028b", "<b>&amp;"} {
		got := mustAccept(t, st, screen(d, "0", `{`+quote(id)+`:{"1":2}}`), Window{})
		c := mustCheck(t, ModeStrict, st, got, Window{})
		if _, ok := c.Payload.ScreenTime.Apps[id]; !ok {
			t.Errorf("app id %q not kept: %v", id, c.Payload.ScreenTime.Apps)
		}
	}

	// A long app id is clipped in the field name of a later refusal.
	_, err := Check(st, []byte(screen(d, "0", `{`+quote(strings.Repeat("a", 200))+`:{"0":-1}}`)), Rules{})
	var ie *InvalidError
	if !errors.As(err, &ie) || len(ie.Field) > 100 || !strings.Contains(ie.Field, "…") {
		t.Errorf("field of a refusal under a 200-byte app id: %v", err)
	}
}

// Ensure that app_wise_data is required (as the seed required it), that
// an empty object is accepted, and that ModeSeed ignores one that is not
// an object but keeps the day total.
func TestCheck_ScreenTime_AppsRequired(t *testing.T) {
	st := KindScreenTime
	runInvalid(t, bothModes, []invalidCase{
		{"missing", st, screen(date0, "1", ""), Window{}, "app_wise_data", "", `is required (an object {"app id": {"hour": seconds}}, {} when there is none)`},
		{"null", st, screen(date0, "1", "null"), Window{}, "app_wise_data", "", "is required"},
	})
	if got, want := mustAccept(t, st, screen(date0, "1", "{}"), Window{}), `{"date":"2025-12-10","total_screen_time":1,"app_wise_data":{}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	var cases []seedCase
	for _, apps := range []string{`[]`, `[{"a":{"0":1}}]`, `"x"`, `5`, `true`} {
		cases = append(cases, seedCase{"apps " + apps, st, screen(date0, "7", apps), screen(date0, "7", "{}"),
			[]string{"app_wise_data not_an_object"}, "app_wise_data", "must be an object of app id → {hour: seconds}"})
	}
	runSeed(t, Window{}, cases)
}

// Ensure that logs is a list of at most MaxLogs objects in both modes; a
// missing or empty list is no visits in ModeSeed and refused in ModeStrict.
func TestCheck_SiteAccess_Logs(t *testing.T) {
	S := KindSiteAccess
	visit := `{"timestamp":"2025-12-10T10:30:00Z","url":"https://a","accessed":true}`
	logs := func(n int) string {
		return `{"logs":[` + strings.TrimSuffix(strings.Repeat(visit+",", n), ",") + `]}`
	}
	runInvalid(t, bothModes, []invalidCase{
		{"too many", S, logs(MaxLogs + 1), Window{}, "logs", "", "has 1001 entries; at most 1000 allowed"},
		{"an object", S, `{"logs":` + visit + `}`, Window{}, "logs", "", "must be a list of visits"},
		{"a string", S, `{"logs":"x"}`, Window{}, "logs", "", "must be a list of visits"},
		{"a number", S, `{"logs":1}`, Window{}, "logs", "", "must be a list of visits"},
		{"entry null", S, `{"logs":[null]}`, Window{}, "logs[0]", "", "must be a JSON object"},
		{"entry a list", S, `{"logs":[` + visit + `,[]]}`, Window{}, "logs[1]", "", "must be a JSON object"},
		{"entry a string", S, `{"logs":["https://a"]}`, Window{}, "logs[0]", "", "must be a JSON object"},
		{"entry a number", S, `{"logs":[` + visit + `,` + visit + `,7]}`, Window{}, "logs[2]", "", "must be a JSON object"},
	})
	runInvalid(t, strictOnly, []invalidCase{
		{"missing", S, `{}`, Window{}, "logs", "", "is required (a list of visits)"},
		{"null", S, `{"logs":null}`, Window{}, "logs", "", "is required (a list of visits)"},
		{"empty", S, `{"logs":[]}`, Window{}, "logs", "", "must not be empty"},
		{"third entry incomplete", S, `{"logs":[` + visit + `,` + visit + `,{"url":"x","accessed":true}]}`, Window{}, "logs[2].timestamp", "", "is required"},
	})
	for _, tc := range []struct {
		name, data string
		notes      []string
		count      string
	}{
		{"missing", `{}`, []string{"logs missing_logs"}, "0"},
		{"null", `{"logs":null}`, []string{"logs missing_logs"}, "0"},
		{"empty", `{"logs":[]}`, nil, "0"},
		{"third entry incomplete", `{"logs":[` + visit + `,` + visit + `,{"url":"x","accessed":true}]}`, []string{"logs[2].timestamp incomplete_visit"}, "2"},
	} {
		c := mustCheck(t, ModeSeed, S, tc.data, Window{})
		if fmt.Sprint(noteList(c.Notes)) != fmt.Sprint(tc.notes) {
			t.Errorf("%s: notes %q, want %q", tc.name, noteList(c.Notes), tc.notes)
		}
		if got := string(c.Payload.AppendAckResult(nil)); got != `,"count":`+tc.count {
			t.Errorf("%s: AckResult %q, want count %s", tc.name, got, tc.count)
		}
		if tc.count == "0" && (string(c.Data) != noSites || c.Payload.Rows() != 0 || c.Payload.SiteAccess.Logs == nil) {
			t.Errorf("%s: Data %s, Rows %d, Logs %#v", tc.name, c.Data, c.Payload.Rows(), c.Payload.SiteAccess.Logs)
		}
	}
	mustAccept(t, S, logs(MaxLogs), Window{})
	mustAccept(t, S, logs(1), Window{})
}

// Ensure that a visit missing its timestamp, url or accessed, or with an
// empty timestamp or url, is skipped in ModeSeed (as the seed skipped it)
// and refused in ModeStrict.
func TestCheck_SiteAccess_IncompleteVisit(t *testing.T) {
	S := KindSiteAccess
	ok := `{"timestamp":"2025-12-10T10:30:00Z","url":"https://a","accessed":true}`
	var cases []seedCase
	for _, tc := range []struct{ name, visit, field string }{
		{"timestamp missing", `{"url":"u","accessed":true}`, "timestamp"},
		{"timestamp null", `{"timestamp":null,"url":"u","accessed":true}`, "timestamp"},
		{"timestamp empty", `{"timestamp":"","url":"u","accessed":true}`, "timestamp"},
		{"url missing", `{"timestamp":` + ts0 + `,"accessed":true}`, "url"},
		{"url null", `{"timestamp":` + ts0 + `,"url":null,"accessed":true}`, "url"},
		{"url empty", `{"timestamp":` + ts0 + `,"url":"","accessed":true}`, "url"},
		{"url empty with spaces around", `{"timestamp":` + ts0 + `,"url" :  ""  ,"accessed":true}`, "url"},
		{"accessed missing", `{"timestamp":` + ts0 + `,"url":"u"}`, "accessed"},
		{"accessed null", `{"timestamp":` + ts0 + `,"url":"u","accessed":null}`, "accessed"},
		{"empty object", `{}`, "timestamp"},
		{"all missing but accessed", `{"accessed":false}`, "timestamp"},
	} {
		cases = append(cases, seedCase{tc.name, S, `{"logs":[` + ok + `,` + tc.visit + `]}`, `{"logs":[` + ok + `]}`,
			[]string{"logs[1]." + tc.field + " incomplete_visit"}, "logs[1]." + tc.field, "is required"})
	}
	cases = append(cases, seedCase{"every visit incomplete", S, `{"logs":[{"url":"u"},{"timestamp":"x"}]}`, noSites,
		[]string{"logs[0].timestamp incomplete_visit", "logs[1].url incomplete_visit"}, "logs[0].timestamp", "is required"})
	runSeed(t, Window{}, cases)
	c := mustCheck(t, ModeSeed, S, `{"logs":[{"url":"u"}]}`, Window{})
	if !c.Notes[0].Ignored || !strings.Contains(c.Notes[0].String(), "logs[0].timestamp: missing or empty; visit ignored") {
		t.Errorf("note %+v (%s)", c.Notes[0], c.Notes[0])
	}
}

// Ensure that each visit's url is a string of at most MaxURLLen bytes
// after its control characters are percent-encoded, in both modes.
func TestCheck_SiteAccess_URL(t *testing.T) {
	S := KindSiteAccess
	runInvalid(t, bothModes, []invalidCase{
		{"too long", S, site(ts0, quote(strings.Repeat("u", MaxURLLen+1)), "true"), Window{}, "logs[0].url", "", "longer than 2048 bytes"},
		{"too long once encoded", S, site(ts0, quote(strings.Repeat("u", MaxURLLen-2)+"\x00"), "true"), Window{}, "logs[0].url", "", "longer than 2048 bytes"},
		{"too long in multibyte runes", S, site(ts0, quote(strings.Repeat("é", MaxURLLen/2)+"x"), "true"), Window{}, "logs[0].url", "", "longer than 2048 bytes"},
		{"number", S, site(ts0, "1", "true"), Window{}, "logs[0].url", "", "must be a string"},
		{"list", S, site(ts0, `["https://a"]`, "true"), Window{}, "logs[0].url", "", "must be a string"},
		{"object", S, site(ts0, `{}`, "true"), Window{}, "logs[0].url", "", "must be a string"},
	})
	mustAccept(t, S, site(ts0, quote(strings.Repeat("u", MaxURLLen)), "true"), Window{})
	mustAccept(t, S, site(ts0, quote(strings.Repeat("é", MaxURLLen/2)), "true"), Window{})
	mustAccept(t, S, site(ts0, `"x"`, "true"), Window{})
	if got := mustAccept(t, S, site(ts0, `"https://例え.jp/パス?q=ü&x=<y>"`, "true"), Window{}); got != site(ts0, `"https://例え.jp/パス?q=ü\u0026x=\u003cy\u003e"`, "true") {
		t.Errorf("Unicode URL: got %s", got)
	}

	// Control characters are percent-encoded in both modes, with a note.
	for _, tc := range []struct{ name, in, want string }{
		{"NUL", "https://x\x00.example", "https://x%00.example"},
		{"tab and newline", "tab\there\nnewline", "tab%09here%0Anewline"},
		{"C0 and DEL", "a\x01b\x1fc\x7f", "a%01b%1Fc%7F"},
		{"fits once encoded", strings.Repeat("u", MaxURLLen-3) + "\x00", strings.Repeat("u", MaxURLLen-3) + "%00"},
	} {
		for _, m := range bothModes {
			c := mustCheck(t, m, S, site(ts0, quote(tc.in), "true"), Window{})
			if got := c.Payload.SiteAccess.Logs[0].URL; got != tc.want {
				t.Errorf("%s/%s: url %q, want %q", modeName(m), tc.name, got, tc.want)
			}
			if fmt.Sprint(noteList(c.Notes)) != "[logs[0].url url_control_chars]" || c.Notes[0].Ignored {
				t.Errorf("%s/%s: notes %+v", modeName(m), tc.name, c.Notes)
			}
			again := mustCheck(t, ModeStrict, S, string(c.Data), Window{})
			if len(again.Notes) != 0 || !bytes.Equal(again.Data, c.Data) {
				t.Errorf("%s/%s: canonical %s checks again as %s with notes %v", modeName(m), tc.name, c.Data, again.Data, again.Notes)
			}
		}
	}
}

// Ensure that accessed is true or false in ModeStrict, and that ModeSeed
// takes any other value by Python's bool(), as the seed stored it.
func TestCheck_SiteAccess_Accessed(t *testing.T) {
	S := KindSiteAccess
	for _, b := range []string{"true", "false"} {
		got := mustAccept(t, S, site(ts0, `"https://a"`, b), Window{})
		if !strings.Contains(got, `"accessed":`+b) {
			t.Errorf("accessed %s: got %s", b, got)
		}
	}
	var cases []seedCase
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`"yes"`, true}, {`"no"`, true}, {`"false"`, true}, {`"0"`, true}, {`"true"`, true}, {`" "`, true},
		{`""`, false}, {`0`, false}, {`0.0`, false}, {`-0`, false}, {`0e5`, false}, {`1`, true}, {`-1`, true}, {`0.5`, true}, {`1e400`, true},
		{`[]`, false}, {`[0]`, true}, {`[[]]`, true}, {`{}`, false}, {`{"a":0}`, true},
	} {
		cases = append(cases, seedCase{"accessed " + tc.in, S, site(ts0, `"u"`, tc.in), site(ts0, `"u"`, fmt.Sprint(tc.want)),
			[]string{"logs[0].accessed truthy_accessed"}, "logs[0].accessed", "must be true or false"})
	}
	runSeed(t, Window{}, cases)
	c := mustCheck(t, ModeSeed, S, site(ts0, `"u"`, `"false"`), Window{})
	if n := c.Notes[0]; n.Ignored || n.Text != `"false" taken as true` {
		t.Errorf("note %+v", n)
	}
}

// Ensure that device timestamps older than MaxAge are refused with Code
// too_old and those beyond MaxFuture with Code future, in both modes,
// edges accepted.
func TestCheck_Window_Timestamp(t *testing.T) {
	oldest := testNow.Add(-DefaultRetention)
	latest := testNow.Add(DefaultMaxFuture)
	var cases []invalidCase
	for _, tc := range []struct {
		name string
		ts   time.Time
		code string
		why  string
	}{
		{"a nanosecond too old", oldest.Add(-time.Nanosecond), CodeTooOld, "is older than the retention window of 365 days"},
		{"years too old", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), CodeTooOld, "2001-01-01T00:00:00Z is older than the retention window"},
		{"a nanosecond in the future", latest.Add(time.Nanosecond), CodeFuture, "is in the future"},
		{"next year", testNow.AddDate(1, 0, 0), CodeFuture, "2026-12-10T12:00:00Z is in the future"},
	} {
		cases = append(cases,
			invalidCase{"location/" + tc.name, KindLocation, loc(rfc(tc.ts), "1", "1"), testWindow, "timestamp", tc.code, tc.why},
			invalidCase{"site_access/" + tc.name, KindSiteAccess, site(rfc(tc.ts), `"u"`, "true"), testWindow, "logs[0].timestamp", tc.code, tc.why})
	}
	// A zone offset counts: 11:00+01:00 is 10:00Z.
	cases = append(cases, invalidCase{"offset applied", KindLocation,
		loc(quote(latest.In(time.FixedZone("", 3600)).Add(time.Second).Format(time.RFC3339)), "1", "1"), testWindow, "timestamp", CodeFuture, "is in the future"})
	// The window is checked for every visit, not only the first.
	cases = append(cases, invalidCase{"second visit too old", KindSiteAccess,
		`{"logs":[` + strings.TrimPrefix(strings.TrimSuffix(seedSiteAccess, "]}"), `{"logs": [`) + `,{"timestamp":"2020-01-01T00:00:00Z","url":"u","accessed":true}]}`,
		testWindow, "logs[1].timestamp", CodeTooOld, "older than the retention window"})
	runInvalid(t, bothModes, cases)

	for _, ts := range []time.Time{oldest, latest, testNow, testNow.Add(-24 * time.Hour), oldest.In(time.FixedZone("", -8*3600))} {
		mustAccept(t, KindLocation, loc(rfc(ts), "1", "1"), testWindow)
		mustAccept(t, KindSiteAccess, site(rfc(ts), `"u"`, "true"), testWindow)
	}
}

func rfc(t time.Time) string { return quote(t.Format(time.RFC3339Nano)) }

// Ensure that a zero MaxAge or MaxFuture turns off its own check only; the
// absolute bounds stay.
func TestCheck_Window_Unbounded(t *testing.T) {
	ancient := loc(`"2001-01-01T00:00:00Z"`, "1", "1")
	farFuture := loc(`"2099-01-01T00:00:00Z"`, "1", "1")
	noAge := Window{Now: testNow, MaxFuture: time.Minute}
	noFuture := Window{Now: testNow, MaxAge: time.Hour}
	mustAccept(t, KindLocation, ancient, noAge)
	mustAccept(t, KindLocation, farFuture, noFuture)
	runInvalid(t, bothModes, []invalidCase{
		{"age still checked", KindLocation, ancient, noFuture, "timestamp", CodeTooOld, "older than the retention window"},
		{"future still checked", KindLocation, farFuture, noAge, "timestamp", CodeFuture, "is in the future"},
		{"absolute past without MaxAge", KindLocation, loc(`"1999-01-01T00:00:00Z"`, "1", "1"), noAge, "timestamp", CodeTooOld, "is before 2000"},
		{"absolute future without MaxFuture", KindLocation, loc(`"2100-01-01T00:00:00Z"`, "1", "1"), noFuture, "timestamp", CodeFuture, "is not before 2100"},
	})
}

// Ensure that a zero Now leaves only the absolute bounds (the edge does
// not know central's clock yet).
func TestCheck_Window_ZeroNow(t *testing.T) {
	w := Window{MaxAge: time.Hour, MaxFuture: time.Minute}
	for _, ts := range []string{`"2000-01-01T00:00:00Z"`, `"2001-01-01T00:00:00Z"`, `"2099-12-31T23:59:59.999999999Z"`} {
		mustAccept(t, KindLocation, loc(ts, "0", "0"), w)
		mustAccept(t, KindSiteAccess, site(ts, `"u"`, "true"), w)
	}
	for _, d := range []string{`"2000-01-01"`, `"2001-06-30"`, `"2099-12-31"`} {
		mustAccept(t, KindScreenTime, screen(d, "0", "{}"), w)
	}
	runInvalid(t, bothModes, []invalidCase{
		{"before 2000", KindLocation, loc(`"1999-12-31T23:59:59Z"`, "0", "0"), w, "timestamp", CodeTooOld, "is before 2000"},
		{"2100", KindSiteAccess, site(`"2100-01-01T00:00:00Z"`, `"u"`, "true"), w, "logs[0].timestamp", CodeFuture, "is not before 2100"},
		{"date before 2000", KindScreenTime, screen(`"1999-12-31"`, "0", "{}"), w, "date", CodeTooOld, "is before 2000"},
		{"date 2100", KindScreenTime, screen(`"2100-01-01"`, "0", "{}"), w, "date", CodeFuture, "is not before 2100"},
	})
}

// Ensure that the date of a screen_time payload is checked against the
// window with a day of slack at both ends, in both modes.
func TestCheck_Window_Date(t *testing.T) {
	// Now is 2025-12-10T12:00Z and Now-365d is 2024-12-10T12:00Z: a date
	// is refused when its midnight is more than a day before that, so the
	// oldest accepted date is 2024-12-10; the latest is 2025-12-11, whose
	// midnight is within Now+10m+24h.
	st := KindScreenTime
	runInvalid(t, bothModes, []invalidCase{
		{"too old", st, screen(`"2024-12-09"`, "0", "{}"), testWindow, "date", CodeTooOld, "2024-12-09 is older than the retention window of 365 days"},
		{"far too old", st, screen(`"2001-01-01"`, "0", "{}"), testWindow, "date", CodeTooOld, "older than the retention window"},
		{"future", st, screen(`"2025-12-12"`, "0", "{}"), testWindow, "date", CodeFuture, "2025-12-12 is in the future"},
		{"far future", st, screen(`"2030-01-01"`, "0", "{}"), testWindow, "date", CodeFuture, "is in the future"},
	})
	for _, d := range []string{"2024-12-10", "2024-12-11", "2025-01-01", "2025-12-09", "2025-12-10", "2025-12-11"} {
		mustAccept(t, st, screen(quote(d), "0", "{}"), testWindow)
	}
	// The seed's date form is judged by the date it is taken as.
	runInvalid(t, []Mode{ModeSeed}, []invalidCase{
		{"seed form too old", st, screen(`"2024-12-9"`, "0", "{}"), testWindow, "date", CodeTooOld, "2024-12-09 is older than the retention window"},
	})
	mustCheck(t, ModeSeed, st, screen(`"2024-12-10"`, "0", "{}"), testWindow)
}

// Ensure that a child_hash inside the data must name the sender's child
// in both modes (the seed let one child write as another), that it is
// dropped from the canonical form, and that Rules.Child "" skips the check.
func TestCheck_ChildHash(t *testing.T) {
	const child = "c0ffee"
	withChild := func(raw string) string {
		return `{"child_hash":` + raw + `,` + strings.TrimPrefix(seedLocation, "{")
	}
	canon := `{"timestamp":"2025-12-10T10:30:00Z","latitude":40.7128,"longitude":-74.006}`
	for _, m := range bothModes {
		for _, raw := range []string{quote(child), "null"} {
			c, err := Check(KindLocation, []byte(withChild(raw)), Rules{Mode: m, Child: child})
			if err != nil || string(c.Data) != canon || len(c.Notes) != 0 {
				t.Errorf("%s: child_hash %s: %s, %v, %v", modeName(m), raw, c.Data, c.Notes, err)
			}
		}
		for _, raw := range []string{quote("other"), quote(""), quote(child + " "), quote(strings.ToUpper(child)), "5", "true", `["c0ffee"]`} {
			for _, k := range Kinds {
				data := `{"child_hash":` + raw + `}` // refused before the payload is read
				c, err := Check(k, []byte(data), Rules{Mode: m, Child: child})
				assertInvalid(t, c, err, "child_hash", CodeChildMismatch, "does not match the sender's child")
			}
		}
		// Central's batch path passes no child: the canonical form holds none.
		c, err := Check(KindLocation, []byte(withChild(quote("other"))), Rules{Mode: m})
		if err != nil || string(c.Data) != canon || len(c.Notes) != 0 {
			t.Errorf("%s: without Rules.Child: %s, %v, %v", modeName(m), c.Data, c.Notes, err)
		}
	}
	// Only the data object's own child_hash is the protocol's; one inside
	// a visit is an unknown field like any other.
	runSeed(t, Window{}, []seedCase{
		{"child_hash in a visit", KindSiteAccess, site(ts0, `"u"`, `true,"child_hash":"other"`), site(ts0, `"u"`, "true"),
			[]string{"logs[0].child_hash unknown_field"}, "logs[0].child_hash", "is not a field of this message"},
	})
}

// Ensure that CheckChildHash takes 1-128 bytes of printable ASCII without
// space or '/' and refuses the rest with a reason.
func TestCheckChildHash(t *testing.T) {
	for _, ok := range []string{"a", "c0ffee", strings.Repeat("f", MaxChildHashLen), "A-b_c.d~e!$&'()*+,;=:@"} {
		if err := CheckChildHash(ok); err != nil {
			t.Errorf("CheckChildHash(%q) = %v", ok, err)
		}
	}
	for _, tc := range []struct{ in, reason string }{
		{"", "child_hash is missing"},
		{strings.Repeat("f", MaxChildHashLen+1), "longer than 128 characters"},
		{"a b", "not allowed"}, {"a/b", "not allowed"}, {"a\x00b", "not allowed"}, {"a\tb", "not allowed"},
		{"a\x7f", "not allowed"}, {"é", "not allowed"}, {"a\nb", "not allowed"},
	} {
		err := CheckChildHash(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("CheckChildHash(%q) = %v, want %q", tc.in, err, tc.reason)
		}
	}
}

// Ensure that fields of no message are noted (ignored) in ModeSeed, in
// key order, and refused in ModeStrict, at the top and inside a visit.
func TestCheck_UnknownFields(t *testing.T) {
	runSeed(t, Window{}, []seedCase{
		{"screen_time", KindScreenTime, `{"z":1,"date":"2025-12-10","total_screen_time":1,"app_wise_data":{},"a":[],"Date":"x"}`,
			screen(date0, "1", "{}"), []string{"Date unknown_field", "a unknown_field", "z unknown_field"}, "Date", "is not a field of this message"},
		{"location", KindLocation, `{"accuracy":5,` + strings.TrimPrefix(seedLocation, "{"), "",
			[]string{"accuracy unknown_field"}, "accuracy", "is not a field of this message"},
		{"site_access top", KindSiteAccess, `{"device":"pixel",` + strings.TrimPrefix(seedSiteAccess, "{"), "",
			[]string{"device unknown_field"}, "device", "is not a field of this message"},
		{"site_access visit", KindSiteAccess, site(ts0, `"u"`, `true,"title":"x"`), site(ts0, `"u"`, "true"),
			[]string{"logs[0].title unknown_field"}, "logs[0].title", "is not a field of this message"},
		{"top before visit", KindSiteAccess, `{"x":1,"logs":[{"y":2,"timestamp":` + ts0 + `,"url":"u","accessed":true}]}`, site(ts0, `"u"`, "true"),
			[]string{"x unknown_field", "logs[0].y unknown_field"}, "x", "is not a field of this message"},
		{"empty name", KindLocation, `{"":1,` + strings.TrimPrefix(seedLocation, "{"), "",
			[]string{`"" unknown_field`}, `""`, "is not a field of this message"},
		{"empty name in a visit", KindSiteAccess, site(ts0, `"u"`, `true,"":0`), site(ts0, `"u"`, "true"),
			[]string{`logs[0]."" unknown_field`}, `logs[0].""`, "is not a field of this message"},
		{"long name is clipped", KindLocation, `{` + quote(strings.Repeat("n", 500)) + `:1,` + strings.TrimPrefix(seedLocation, "{"), "",
			[]string{strings.Repeat("n", 64) + "… unknown_field"}, strings.Repeat("n", 64) + "…", "is not a field of this message"},
	})
	c := mustCheck(t, ModeSeed, KindLocation, `{"accuracy":5,`+strings.TrimPrefix(seedLocation, "{"), Window{})
	if n := c.Notes[0]; !n.Ignored || n.String() != "accuracy: unknown field; ignored" {
		t.Errorf("note %+v (%s)", n, n)
	}
}

// Ensure that the canonical output is compact, drops unknown fields,
// normalises numbers and timestamps to UTC, and checks again in ModeStrict
// to the same bytes without a note.
func TestCheck_Canonical(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  Kind
		in    string
		want  string
		notes []string
	}{
		{"screen_time", KindScreenTime,
			`{ "extra": [1,2], "child_hash": "abc", "app_wise_data": { "b": {"10": 5, "2": 3600.0, "9": 1e1}, "a": {} },
			   "total_screen_time": 7.2e3, "date": "2025-12-10" }`,
			`{"date":"2025-12-10","total_screen_time":7200,"app_wise_data":{"a":{},"b":{"10":5,"2":3600,"9":10}}}`,
			[]string{"extra unknown_field"}},
		{"location", KindLocation,
			"\n {\"accuracy\": 5, \"longitude\": -74.0060, \"latitude\": 4.07128E1,\n \"timestamp\": \"2025-12-10T05:30:00.120-05:00\", \"child_hash\": null} \n",
			`{"timestamp":"2025-12-10T10:30:00.12Z","latitude":40.7128,"longitude":-74.006}`,
			[]string{"accuracy unknown_field"}},
		{"site_access", KindSiteAccess,
			`{"logs": [{"url": "https://a/?q=<b>&c", "accessed": false, "title": "x", "timestamp": "2025-12-11T00:30:00+14:00"},
			            {"timestamp": "2025-12-10T10:30:00Z", "url": "é\u2028", "accessed": true}], "device": "pixel"}`,
			`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://a/?q=\u003cb\u003e\u0026c","accessed":false},{"timestamp":"2025-12-10T10:30:00Z","url":"é\u2028","accessed":true}]}`,
			[]string{"device unknown_field", "logs[0].title unknown_field"}},
		{"seed forms", KindSiteAccess,
			`{"logs":[{"timestamp":"2025-12-10 11:30:00+0100","url":"a\tb","accessed":"yes"}]}`,
			`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"a%09b","accessed":true}]}`,
			[]string{"logs[0].timestamp time_form", "logs[0].url url_control_chars", "logs[0].accessed truthy_accessed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCheck(t, ModeSeed, tc.kind, tc.in, testWindow)
			if string(c.Data) != tc.want {
				t.Errorf("got  %s\nwant %s", c.Data, tc.want)
			}
			if fmt.Sprint(noteList(c.Notes)) != fmt.Sprint(tc.notes) {
				t.Errorf("notes %q, want %q", noteList(c.Notes), tc.notes)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, c.Data); err != nil || compact.String() != string(c.Data) {
				t.Errorf("output is not compact JSON: %s (%v)", c.Data, err)
			}
			again := mustCheck(t, ModeStrict, tc.kind, string(c.Data), testWindow)
			if !bytes.Equal(again.Data, c.Data) || len(again.Notes) != 0 {
				t.Errorf("not idempotent:\n1st %s\n2nd %s, notes %v", c.Data, again.Data, again.Notes)
			}
		})
	}
}

// Ensure that Checked.Payload holds the typed values of the canonical
// form: exactly the field of the message's kind, times in UTC.
func TestCheck_Payload(t *testing.T) {
	c := mustCheck(t, ModeStrict, KindScreenTime, seedScreenTime, Window{})
	st := c.Payload.ScreenTime
	if st == nil || c.Payload.Location != nil || c.Payload.SiteAccess != nil ||
		st.Date != "2025-12-10" || st.TotalSeconds != 3600 || st.Apps["com.example.app"][0] != 1800 {
		t.Errorf("screen_time Payload = %+v", c.Payload)
	}
	c = mustCheck(t, ModeStrict, KindLocation, loc(`"2025-12-10T11:30:00+01:00"`, "40.7128", "-74.006"), Window{})
	l := c.Payload.Location
	if l == nil || c.Payload.ScreenTime != nil || c.Payload.SiteAccess != nil ||
		!l.Timestamp.Equal(time.Date(2025, 12, 10, 10, 30, 0, 0, time.UTC)) || l.Timestamp.Location() != time.UTC ||
		l.Latitude != 40.7128 || l.Longitude != -74.006 {
		t.Errorf("location Payload = %+v", c.Payload)
	}
	c = mustCheck(t, ModeStrict, KindSiteAccess, seedSiteAccess, Window{})
	sa := c.Payload.SiteAccess
	if sa == nil || c.Payload.ScreenTime != nil || c.Payload.Location != nil || len(sa.Logs) != 1 ||
		sa.Logs[0].URL != "https://example.com" || !sa.Logs[0].Accessed || sa.Logs[0].Timestamp.Location() != time.UTC {
		t.Errorf("site_access Payload = %+v", c.Payload)
	}
	if got := HourKeys(map[int]int64{23: 1, 0: 1, 10: 1, 2: 1}); fmt.Sprint(got) != "[0 2 10 23]" {
		t.Errorf("HourKeys = %v", got)
	}
}

// Ensure that Rows counts the day plus its app hours, one fix, or one row
// per visit, and zero for no visits or an empty payload.
func TestPayload_Rows(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		data string
		rows int
	}{
		{KindScreenTime, screen(date0, "1", `{"a":{"0":1,"1":1},"b":{},"c":{"5":0}}`), 4},
		{KindScreenTime, screen(date0, "1", `{}`), 1},
		{KindLocation, seedLocation, 1},
		{KindSiteAccess, seedSiteAccess, 1},
		{KindSiteAccess, `{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"a","accessed":true},{"timestamp":"2025-12-10T10:30:00Z","url":"a","accessed":true}]}`, 2},
		{KindSiteAccess, `{"logs":[]}`, 0},
	} {
		if got := mustCheck(t, ModeSeed, tc.kind, tc.data, Window{}).Payload.Rows(); got != tc.rows {
			t.Errorf("%s %s: Rows = %d, want %d", tc.kind, tc.data, got, tc.rows)
		}
	}
	if (Payload{}).Rows() != 0 || len((Payload{}).AppendAckResult(nil)) != 0 {
		t.Error("empty Payload has rows or an ack result")
	}
}

// Ensure that AppendAckResult gives the seed's ack keys: the date, the
// location's timestamp as Python's isoformat() printed it, the count of
// visits stored.
func TestPayload_AppendAckResult(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		data string
		want string
	}{
		{KindScreenTime, screen(`"2025-1-5"`, "1", "{}"), `,"date":"2025-01-05"`},
		{KindLocation, seedLocation, `,"timestamp":"2025-12-10T10:30:00+00:00"`},
		{KindLocation, loc(`"2025-12-10T11:30:00.5+01:00"`, "1", "1"), `,"timestamp":"2025-12-10T10:30:00.500000+00:00"`},
		{KindLocation, loc(`"2025-12-10T10:30:00.123456789Z"`, "1", "1"), `,"timestamp":"2025-12-10T10:30:00.123456+00:00"`},
		{KindSiteAccess, seedSiteAccess, `,"count":1`},
		{KindSiteAccess, `{"logs":[{"url":"u"},` + strings.TrimPrefix(seedSiteAccess, `{"logs": [`), `,"count":1`},
		{KindSiteAccess, `{}`, `,"count":0`},
	} {
		if got := string(mustCheck(t, ModeSeed, tc.kind, tc.data, Window{}).Payload.AppendAckResult(nil)); got != tc.want {
			t.Errorf("%s %s: AppendAckResult = %s, want %s", tc.kind, tc.data, got, tc.want)
		}
	}
}

// Ensure that AppendPythonISOFormat prints UTC with microseconds only when
// there is a fraction, as Python's datetime.isoformat() did, and that its
// hand-made digits agree with time.Format over the years the checks admit
// and beyond.
func TestAppendPythonISOFormat(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 12, 10, 10, 30, 0, 0, time.UTC), "2025-12-10T10:30:00+00:00"},
		{time.Date(2025, 12, 10, 10, 30, 0, 1000, time.UTC), "2025-12-10T10:30:00.000001+00:00"},
		{time.Date(2025, 12, 10, 10, 30, 0, 999, time.UTC), "2025-12-10T10:30:00+00:00"},
		{time.Date(2025, 12, 10, 10, 30, 0, 120_000_000, time.UTC), "2025-12-10T10:30:00.120000+00:00"},
		{time.Date(2025, 12, 10, 11, 30, 0, 0, time.FixedZone("", 3600)), "2025-12-10T10:30:00+00:00"},
		{time.Date(2000, 1, 1, 0, 0, 0, 999_999_999, time.UTC), "2000-01-01T00:00:00.999999+00:00"},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "10000-01-01T00:00:00+00:00"},
	} {
		if got := string(AppendPythonISOFormat([]byte("x"), tc.t)); got != "x"+tc.want {
			t.Errorf("AppendPythonISOFormat(%v) = %s, want x%s", tc.t, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		tm := time.Unix(rng.Int64N(1<<35)-1<<33, rng.Int64N(1e9)).In(time.FixedZone("", rng.IntN(50000)-25000))
		u := tm.UTC().Truncate(time.Microsecond)
		want := u.Format("2006-01-02T15:04:05.000000+00:00")
		if u.Nanosecond() == 0 {
			want = u.Format("2006-01-02T15:04:05+00:00")
		}
		if got := string(AppendPythonISOFormat(nil, tm)); got != want {
			t.Fatalf("AppendPythonISOFormat(%v) = %s, time.Format gives %s", tm, got, want)
		}
	}
}

// Ensure that every note names a field, a known reason and a text, and
// that refusals and notes stay short for hostile input.
func TestCheck_NotesAndReasonsAreBounded(t *testing.T) {
	long := strings.Repeat("ü", 3000)
	in := `{"logs":[{` + quote(long) + `:1,"timestamp":"2025-12-10T10:30:00","url":` + quote(long[:2040]+"\x00") + `,"accessed":` + quote(long) + `}],` + quote(long) + `:2}`
	c := mustCheck(t, ModeSeed, KindSiteAccess, in, Window{})
	if len(c.Notes) != 5 {
		t.Fatalf("notes %v", noteList(c.Notes))
	}
	for _, n := range c.Notes {
		if n.Field == "" || n.Text == "" || !knownNote(n.Reason) || len(n.String()) > 300 {
			t.Errorf("note %+v", n)
		}
	}
	_, err := Check(KindSiteAccess, []byte(in), Rules{Mode: ModeStrict})
	if err == nil || len(err.Error()) > 300 {
		t.Errorf("strict refusal %v", err)
	}
}

// noteReasons lists every Note reason and whether it marks a skipped item.
var noteReasons = map[string]bool{
	NoteUnknownField: true, NoteNumberString: false, NoteFraction: false, NoteTimeNoZone: false,
	NoteTimeForm: false, NoteDateForm: false, NoteHourForm: false, NoteBadHour: true, NoteBadSeconds: true,
	NoteNotObject: true, NoteMissingLogs: false, NoteLogsList: false, NoteIncompleteVisit: true,
	NoteTruthy: false, NoteURLControl: false, NoteDuplicate: true,
}

func knownNote(reason string) bool {
	_, ok := noteReasons[reason]
	return ok
}

// Ensure that InvalidError renders as "field: reason", or the bare reason
// without a field.
func TestInvalidError_Error(t *testing.T) {
	e := &InvalidError{Code: CodeInvalid, Field: "latitude", Reason: "is required"}
	if e.Error() != "latitude: is required" {
		t.Errorf("Error() = %q", e.Error())
	}
	e.Field = ""
	if e.Error() != "is required" {
		t.Errorf("Error() = %q", e.Error())
	}
	wrapped := fmt.Errorf("validate: %w", &InvalidError{Code: CodeFuture})
	if !IsInvalid(wrapped) || InvalidCode(wrapped) != CodeFuture {
		t.Errorf("wrapped: IsInvalid, InvalidCode = %v, %q", IsInvalid(wrapped), InvalidCode(wrapped))
	}
	if IsInvalid(ErrFull) || InvalidCode(ErrFull) != "" {
		t.Error("ErrFull counted as invalid")
	}
}
