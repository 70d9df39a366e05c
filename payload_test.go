package hearth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

func runInvalid(t *testing.T, cases []invalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Validate(tc.kind, []byte(tc.data), tc.w)
			code := tc.code
			if code == "" {
				code = CodeInvalid
			}
			assertInvalid(t, out, err, tc.field, code, tc.reason)
		})
	}
}

func assertInvalid(t *testing.T, out []byte, err error, field, code, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want refusal of %s (%s); output %s", field, code, out)
	}
	if out != nil {
		t.Errorf("output %q returned along with error", out)
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

// mustValidate validates data and fails the test on a refusal.
func mustValidate(t *testing.T, k Kind, data string, w Window) []byte {
	t.Helper()
	out, err := Validate(k, []byte(data), w)
	if err != nil {
		t.Fatalf("Validate(%s, %s): %v", k, data, err)
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

const ts0 = `"2025-12-10T10:30:00Z"`

// Ensure that the seed protocol's example payloads are accepted and come out
// as compact canonical JSON.
func TestValidate_SeedExamples(t *testing.T) {
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
			if got := mustValidate(t, tc.kind, tc.data, Window{}); string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Ensure that an unknown kind is refused with Code unknown_type on the
// "type" field, naming the kind.
func TestValidate_UnknownKind(t *testing.T) {
	for _, k := range []Kind{"", "ping", "auth", "Location", "screen-time", "location "} {
		t.Run(fmt.Sprintf("%q", k), func(t *testing.T) {
			out, err := Validate(k, []byte(seedLocation), Window{})
			assertInvalid(t, out, err, "type", CodeUnknownType, fmt.Sprintf("unknown message type %q", k))
		})
	}
}

// Ensure that a payload that is not a JSON object is refused for every kind,
// on the field "data".
func TestValidate_Data_NotObject(t *testing.T) {
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
		{"trailing data", `{} {}`, "has data after the JSON object"},
		{"trailing garbage", `{}x`, "has data after the JSON object"},
	}
	var cases []invalidCase
	for _, k := range Kinds {
		for _, in := range inputs {
			cases = append(cases, invalidCase{string(k) + "/" + in.name, k, in.data, Window{}, "data", "", in.reason})
		}
	}
	runInvalid(t, cases)
}

// Ensure that the screen_time date must be a real calendar date written
// YYYY-MM-DD.
func TestValidate_ScreenTime_Date(t *testing.T) {
	st := KindScreenTime
	runInvalid(t, []invalidCase{
		{"missing", st, screen("", "0", ""), Window{}, "date", "", "is required (YYYY-MM-DD)"},
		{"null", st, screen("null", "0", ""), Window{}, "date", "", "is required"},
		{"number", st, screen("20251210", "0", ""), Window{}, "date", "", "must not be a JSON number"},
		{"empty", st, screen(`""`, "0", ""), Window{}, "date", "", `"" is not a date in the form YYYY-MM-DD`},
		{"no zero padding", st, screen(`"2025-2-3"`, "0", ""), Window{}, "date", "", `"2025-2-3" is not a date`},
		{"slashes", st, screen(`"2025/12/10"`, "0", ""), Window{}, "date", "", "YYYY-MM-DD"},
		{"day first", st, screen(`"10-12-2025"`, "0", ""), Window{}, "date", "", "YYYY-MM-DD"},
		{"with time", st, screen(`"2025-12-10T00:00:00Z"`, "0", ""), Window{}, "date", "", "YYYY-MM-DD"},
		{"trailing space", st, screen(`"2025-12-10 "`, "0", ""), Window{}, "date", "", "YYYY-MM-DD"},
		{"February 30", st, screen(`"2025-02-30"`, "0", ""), Window{}, "date", "", `"2025-02-30" is not a date`},
		{"February 29 of a common year", st, screen(`"2025-02-29"`, "0", ""), Window{}, "date", "", "is not a date"},
		{"April 31", st, screen(`"2025-04-31"`, "0", ""), Window{}, "date", "", "is not a date"},
		{"month 13", st, screen(`"2025-13-01"`, "0", ""), Window{}, "date", "", "is not a date"},
		{"day 0", st, screen(`"2025-12-00"`, "0", ""), Window{}, "date", "", "is not a date"},
		{"garbage", st, screen(`"yesterday"`, "0", ""), Window{}, "date", "", `"yesterday" is not a date`},
		{"long garbage is clipped", st, screen(quote(strings.Repeat("x", 5000)), "0", ""), Window{}, "date", "", "…"},
	})
	for _, ok := range []string{"2024-02-29", "2025-12-31", "2025-01-01"} {
		mustValidate(t, st, screen(quote(ok), "0", ""), Window{})
	}
	// A hostile value must not inflate the reason.
	_, err := Validate(st, []byte(screen(quote(strings.Repeat("x", 5000)), "0", "")), Window{})
	if n := len(err.Error()); n > 200 {
		t.Errorf("reason for a 5000-byte date is %d bytes long", n)
	}
}

// Ensure that timestamps must be RFC 3339 with a time zone, for locations
// and for each site visit; fractional seconds are accepted.
func TestValidate_Timestamp_Format(t *testing.T) {
	bad := []struct{ name, ts, reason string }{
		{"no zone", `"2025-12-10T10:30:00"`, `"2025-12-10T10:30:00" is not an RFC 3339 time with a zone`},
		{"no zone fractional", `"2025-12-10T10:30:00.5"`, "is not an RFC 3339 time with a zone"},
		{"space separator", `"2025-12-10 10:30:00Z"`, "is not an RFC 3339 time"},
		{"date only", `"2025-12-10"`, "is not an RFC 3339 time"},
		{"no seconds", `"2025-12-10T10:30Z"`, "is not an RFC 3339 time"},
		{"zone without colon", `"2025-12-10T10:30:00+0100"`, "is not an RFC 3339 time"},
		{"zone name", `"2025-12-10T10:30:00 UTC"`, "is not an RFC 3339 time"},
		{"hour 25", `"2025-12-10T25:30:00Z"`, "is not an RFC 3339 time"},
		{"February 30", `"2025-02-30T10:30:00Z"`, "is not an RFC 3339 time"},
		{"empty", `""`, `"" is not an RFC 3339 time`},
		{"garbage", `"now"`, `"now" is not an RFC 3339 time with a zone (2025-12-10T10:30:00Z)`},
		{"unix seconds string", `"1765362600"`, "is not an RFC 3339 time"},
		{"long garbage is clipped", quote(strings.Repeat("9", 5000)), "…"},
		{"UTC year -1", `"0000-01-01T00:00:00+00:01"`, "outside the years 0000-9999"},
		{"UTC year 10000", `"9999-12-31T23:59:00-01:00"`, "outside the years 0000-9999"},
	}
	var cases []invalidCase
	for _, b := range bad {
		cases = append(cases,
			invalidCase{"location/" + b.name, KindLocation, loc(b.ts, "1", "2"), Window{}, "timestamp", "", b.reason},
			invalidCase{"site_access/" + b.name, KindSiteAccess, site(b.ts, `"https://a"`, "true"), Window{}, "logs[0].timestamp", "", b.reason})
	}
	cases = append(cases,
		invalidCase{"location/missing", KindLocation, loc("", "1", "2"), Window{}, "timestamp", "", "is required (RFC 3339 with a time zone)"},
		invalidCase{"location/null", KindLocation, loc("null", "1", "2"), Window{}, "timestamp", "", "is required"},
		invalidCase{"location/number", KindLocation, loc("1765362600", "1", "2"), Window{}, "timestamp", "", "must not be a JSON number"},
		invalidCase{"site_access/missing", KindSiteAccess, site("", `"https://a"`, "true"), Window{}, "logs[0].timestamp", "", "is required (RFC 3339 with a time zone)"},
		invalidCase{"site_access/number", KindSiteAccess, site("0", `"https://a"`, "true"), Window{}, "logs[0].timestamp", "", "must not be a JSON number"},
	)
	runInvalid(t, cases)

	for _, ok := range []struct{ ts, utc string }{
		{`"2025-12-10T10:30:00Z"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-10T10:30:00.5Z"`, "2025-12-10T10:30:00.5Z"},
		{`"2025-12-10T10:30:00.123456789Z"`, "2025-12-10T10:30:00.123456789Z"},
		{`"2025-12-10T10:30:00.000Z"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-10T11:30:00+01:00"`, "2025-12-10T10:30:00Z"},
		{`"2025-12-10T05:00:00.25-05:30"`, "2025-12-10T10:30:00.25Z"},
		{`"2025-12-10T10:30:00-00:00"`, "2025-12-10T10:30:00Z"},
		{`"0000-01-01T00:00:00Z"`, "0000-01-01T00:00:00Z"},
		{`"9999-12-31T23:59:59Z"`, "9999-12-31T23:59:59Z"},
	} {
		got := mustValidate(t, KindLocation, loc(ok.ts, "1", "2"), Window{})
		if want := loc(quote(ok.utc), "1", "2"); string(got) != want {
			t.Errorf("%s: got %s, want %s", ok.ts, got, want)
		}
		got = mustValidate(t, KindSiteAccess, site(ok.ts, `"u"`, "false"), Window{})
		if want := site(quote(ok.utc), `"u"`, "false"); string(got) != want {
			t.Errorf("%s: got %s, want %s", ok.ts, got, want)
		}
	}
}

// Ensure that latitude and longitude are required finite numbers within
// ±90 and ±180, the edges included.
func TestValidate_Location_Range(t *testing.T) {
	L := KindLocation
	runInvalid(t, []invalidCase{
		{"latitude above 90", L, loc(ts0, "90.0000001", "0"), Window{}, "latitude", "", "90.0000001 is outside -90..90"},
		{"latitude below -90", L, loc(ts0, "-90.5", "0"), Window{}, "latitude", "", "-90.5 is outside -90..90"},
		{"latitude 1000", L, loc(ts0, "1000", "0"), Window{}, "latitude", "", "is outside -90..90"},
		{"longitude above 180", L, loc(ts0, "0", "180.0000001"), Window{}, "longitude", "", "is outside -180..180"},
		{"longitude below -180", L, loc(ts0, "0", "-181"), Window{}, "longitude", "", "-181 is outside -180..180"},
		{"latitude overflows float64", L, loc(ts0, "1e400", "0"), Window{}, "latitude", "", "must not be a JSON number 1e400"},
		{"longitude overflows float64", L, loc(ts0, "0", "-1e400"), Window{}, "longitude", "", "must not be a JSON number -1e400"},
	})
	for _, ok := range [][2]string{{"90", "180"}, {"-90", "-180"}, {"0", "0"}, {"-0", "-0"}, {"89.999999", "-179.999999"}, {"1e-300", "5E1"}} {
		mustValidate(t, L, loc(ts0, ok[0], ok[1]), Window{})
	}
}

// Ensure that a missing, null or non-number coordinate is refused.
func TestValidate_Location_Required(t *testing.T) {
	L := KindLocation
	runInvalid(t, []invalidCase{
		{"latitude missing", L, loc(ts0, "", "0"), Window{}, "latitude", "", "is required"},
		{"longitude missing", L, loc(ts0, "0", ""), Window{}, "longitude", "", "is required"},
		{"latitude null", L, loc(ts0, "null", "0"), Window{}, "latitude", "", "is required"},
		{"longitude null", L, loc(ts0, "0", "null"), Window{}, "longitude", "", "is required"},
		{"latitude string", L, loc(ts0, `"40.7"`, "0"), Window{}, "latitude", "", "must not be a JSON string"},
		{"longitude string", L, loc(ts0, "0", `"-74.0"`), Window{}, "longitude", "", "must not be a JSON string"},
		{"latitude NaN string", L, loc(ts0, `"NaN"`, "0"), Window{}, "latitude", "", "must not be a JSON string"},
		{"latitude bool", L, loc(ts0, "true", "0"), Window{}, "latitude", "", "must not be a JSON bool"},
		{"longitude object", L, loc(ts0, "0", "{}"), Window{}, "longitude", "", "must not be a JSON object"},
		{"longitude list", L, loc(ts0, "0", "[1]"), Window{}, "longitude", "", "must not be a JSON array"},
		{"latitude NaN literal", L, loc(ts0, "NaN", "0"), Window{}, "data", "", "is not valid JSON"},
		{"latitude Infinity literal", L, loc(ts0, "Infinity", "0"), Window{}, "data", "", "is not valid JSON"},
	})
}

// Ensure that a hostile huge number literal cannot inflate the reason: the
// literal is clipped.
func TestValidate_Location_HugeNumberClipped(t *testing.T) {
	huge := "1" + strings.Repeat("0", 100000) + "e400"
	_, err := Validate(KindLocation, []byte(loc(ts0, huge, "0")), Window{})
	if err == nil {
		t.Fatal("accepted a latitude of 1e100400")
	}
	if n := len(err.Error()); n > 200 {
		t.Errorf("reason is %d bytes long: %.120s…", n, err)
	}
}

// Ensure that the day total is a whole, non-negative number of seconds of
// at most 86400.
func TestValidate_ScreenTime_Total(t *testing.T) {
	st := KindScreenTime
	d := `"2025-12-10"`
	runInvalid(t, []invalidCase{
		{"missing", st, screen(d, "", ""), Window{}, "total_screen_time", "", "is required (seconds)"},
		{"null", st, screen(d, "null", ""), Window{}, "total_screen_time", "", "is required"},
		{"negative", st, screen(d, "-1", ""), Window{}, "total_screen_time", "", "-1 seconds is outside 0-86400"},
		{"above a day", st, screen(d, "86401", ""), Window{}, "total_screen_time", "", "86401 seconds is outside 0-86400"},
		{"far above a day", st, screen(d, "9223372036854775807", ""), Window{}, "total_screen_time", "", "is outside 0-86400"},
		{"fractional", st, screen(d, "3600.5", ""), Window{}, "total_screen_time", "", "3600.5 is not a whole number of seconds"},
		{"tiny fraction", st, screen(d, "0.000001", ""), Window{}, "total_screen_time", "", "is not a whole number of seconds"},
		{"fractional exponent", st, screen(d, "1e-1", ""), Window{}, "total_screen_time", "", "is not a whole number of seconds"},
		{"beyond int64", st, screen(d, "99999999999999999999", ""), Window{}, "total_screen_time", "", "is not a whole number of seconds"},
		{"bool", st, screen(d, "true", ""), Window{}, "total_screen_time", "", "whole number of seconds, not true"},
		{"object", st, screen(d, "{}", ""), Window{}, "total_screen_time", "", "whole number of seconds, not {}"},
		{"long literal is clipped", st, screen(d, "1."+strings.Repeat("5", 5000), ""), Window{}, "total_screen_time", "", "…"},
	})
	for _, ok := range []struct{ in, want string }{
		{"0", "0"}, {"86400", "86400"}, {"3600.0", "3600"}, {"36e2", "3600"}, {"-0", "0"}, {"8.64E4", "86400"},
	} {
		got := mustValidate(t, st, screen(d, ok.in, ""), Window{})
		if want := screen(d, ok.want, "{}"); string(got) != want {
			t.Errorf("total %s: got %s, want %s", ok.in, got, want)
		}
	}
}

// Ensure that a non-numeric string in a seconds field is refused on that
// field with a reason about its type, not as invalid JSON on "data".
func TestValidate_ScreenTime_SecondsString(t *testing.T) {
	st := KindScreenTime
	d := `"2025-12-10"`
	runInvalid(t, []invalidCase{
		{"total", st, screen(d, `"an hour"`, ""), Window{}, "total_screen_time", "", `not "an hour"`},
		{"hour", st, screen(d, "0", `{"a":{"0":"x"}}`), Window{}, "app_wise_data.a.0", "", `not "x"`},
	})
}

// Ensure that hour keys are exactly "0".."23" and hour values whole
// seconds in 0..3600.
func TestValidate_ScreenTime_Hours(t *testing.T) {
	st := KindScreenTime
	d := `"2025-12-10"`
	app := func(hours string) string { return screen(d, "0", `{"com.a":`+hours+`}`) }
	var cases []invalidCase
	for _, h := range []string{"24", "-1", "01", "00", "x", "", " 1", "1 ", "+1", "-0", "1.0", "1e1", "٣", "99999999999999999999"} {
		cases = append(cases, invalidCase{"hour " + quote(h), st, app(`{` + quote(h) + `:1}`), Window{}, "app_wise_data.com.a", "",
			fmt.Sprintf("hour %q is not an hour 0-23", h)})
	}
	cases = append(cases,
		invalidCase{"seconds above an hour", st, app(`{"5":3601}`), Window{}, "app_wise_data.com.a.5", "", "3601 seconds is outside 0-3600"},
		invalidCase{"seconds negative", st, app(`{"23":-5}`), Window{}, "app_wise_data.com.a.23", "", "-5 seconds is outside 0-3600"},
		invalidCase{"seconds fractional", st, app(`{"0":0.5}`), Window{}, "app_wise_data.com.a.0", "", "0.5 is not a whole number of seconds"},
		invalidCase{"seconds null", st, app(`{"0":null}`), Window{}, "app_wise_data.com.a.0", "", "must be a whole number of seconds, not null"},
		invalidCase{"seconds bool", st, app(`{"0":false}`), Window{}, "app_wise_data.com.a.0", "", "whole number of seconds, not false"},
		invalidCase{"seconds list", st, app(`{"0":[1]}`), Window{}, "app_wise_data.com.a.0", "", "whole number of seconds, not [1]"},
		invalidCase{"hours a list", st, app(`[1800]`), Window{}, "app_wise_data", "", "must not be a JSON array"},
		invalidCase{"hours null", st, app(`null`), Window{}, "app_wise_data.com.a", "", "must be an object of hour → seconds"},
		invalidCase{"hours a number", st, app(`1800`), Window{}, "app_wise_data", "", "must not be a JSON number"},
	)
	runInvalid(t, cases)

	var all []string
	for h := 0; h < 24; h++ {
		all = append(all, fmt.Sprintf(`"%d":3600`, h))
	}
	mustValidate(t, st, app("{"+strings.Join(all, ",")+"}"), Window{})
	mustValidate(t, st, app(`{}`), Window{})
	mustValidate(t, st, app(`{"0":0,"23":3600,"7":3.6e3}`), Window{})
}

// Ensure that app ids are non-empty and at most MaxAppIDLen bytes, and that
// at most MaxApps apps are accepted.
func TestValidate_ScreenTime_Apps(t *testing.T) {
	st := KindScreenTime
	d := `"2025-12-10"`
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
	runInvalid(t, []invalidCase{
		{"empty app id", st, screen(d, "0", `{"":{"0":1}}`), Window{}, "app_wise_data", "", "app id must not be empty"},
		{"app id too long", st, screen(d, "0", `{`+quote(strings.Repeat("a", MaxAppIDLen+1))+`:{}}`), Window{}, "app_wise_data", "", "app id longer than 256 bytes"},
		{"app id too long in multibyte runes", st, screen(d, "0", `{`+quote(strings.Repeat("é", 129))+`:{}}`), Window{}, "app_wise_data", "", "longer than 256 bytes"},
		{"too many apps", st, screen(d, "0", apps(MaxApps+1)), Window{}, "app_wise_data", "", "has 1001 apps; at most 1000 allowed"},
		{"apps a list", st, screen(d, "0", `[]`), Window{}, "app_wise_data", "", "must not be a JSON array"},
		{"apps a string", st, screen(d, "0", `"x"`), Window{}, "app_wise_data", "", "must not be a JSON string"},
	})
	mustValidate(t, st, screen(d, "0", `{`+quote(strings.Repeat("a", MaxAppIDLen))+`:{}}`), Window{})
	mustValidate(t, st, screen(d, "0", apps(MaxApps)), Window{})

	// A long app id is clipped in the field name of a later refusal.
	_, err := Validate(st, []byte(screen(d, "0", `{`+quote(strings.Repeat("a", 200))+`:{"0":-1}}`)), Window{})
	var ie *InvalidError
	if !errors.As(err, &ie) || len(ie.Field) > 100 || !strings.Contains(ie.Field, "…") {
		t.Errorf("field of a refusal under a 200-byte app id: %v", err)
	}
}

// Ensure that app_wise_data may be absent or null and then comes out as an
// empty object.
func TestValidate_ScreenTime_AppsOptional(t *testing.T) {
	for _, apps := range []string{"", "null", "{}"} {
		got := mustValidate(t, KindScreenTime, screen(`"2025-12-10"`, "1", apps), Window{})
		if want := `{"date":"2025-12-10","total_screen_time":1,"app_wise_data":{}}`; string(got) != want {
			t.Errorf("app_wise_data %q: got %s, want %s", apps, got, want)
		}
	}
}

// Ensure that logs is a required, non-empty list of at most MaxLogs objects.
func TestValidate_SiteAccess_Logs(t *testing.T) {
	S := KindSiteAccess
	visit := `{"timestamp":"2025-12-10T10:30:00Z","url":"https://a","accessed":true}`
	logs := func(n int) string {
		return `{"logs":[` + strings.TrimSuffix(strings.Repeat(visit+",", n), ",") + `]}`
	}
	runInvalid(t, []invalidCase{
		{"missing", S, `{}`, Window{}, "logs", "", "is required (a list of visits)"},
		{"null", S, `{"logs":null}`, Window{}, "logs", "", "is required"},
		{"empty", S, `{"logs":[]}`, Window{}, "logs", "", "must not be empty"},
		{"too many", S, logs(MaxLogs + 1), Window{}, "logs", "", "has 1001 entries; at most 1000 allowed"},
		{"an object", S, `{"logs":` + visit + `}`, Window{}, "logs", "", "must not be a JSON object"},
		{"a string", S, `{"logs":"x"}`, Window{}, "logs", "", "must not be a JSON string"},
		{"entry null", S, `{"logs":[null]}`, Window{}, "logs[0]", "", "must be a JSON object"},
		{"entry a list", S, `{"logs":[` + visit + `,[]]}`, Window{}, "logs[1]", "", "must be a JSON object"},
		{"entry a string", S, `{"logs":["https://a"]}`, Window{}, "logs[0]", "", "must be a JSON object"},
		{"third entry bad", S, `{"logs":[` + visit + `,` + visit + `,{"url":"x"}]}`, Window{}, "logs[2].timestamp", "", "is required"},
	})
	mustValidate(t, S, logs(MaxLogs), Window{})
	mustValidate(t, S, logs(1), Window{})
}

// Ensure that each visit's url is a non-empty string of at most MaxURLLen bytes.
func TestValidate_SiteAccess_URL(t *testing.T) {
	S := KindSiteAccess
	runInvalid(t, []invalidCase{
		{"missing", S, site(ts0, "", "true"), Window{}, "logs[0].url", "", "is required and must not be empty"},
		{"null", S, site(ts0, "null", "true"), Window{}, "logs[0].url", "", "is required"},
		{"empty", S, site(ts0, `""`, "true"), Window{}, "logs[0].url", "", "must not be empty"},
		{"too long", S, site(ts0, quote(strings.Repeat("u", MaxURLLen+1)), "true"), Window{}, "logs[0].url", "", "longer than 2048 bytes"},
		{"number", S, site(ts0, "1", "true"), Window{}, "logs[0].url", "", "must not be a JSON number"},
		{"list", S, site(ts0, `["https://a"]`, "true"), Window{}, "logs[0].url", "", "must not be a JSON array"},
	})
	mustValidate(t, S, site(ts0, quote(strings.Repeat("u", MaxURLLen)), "true"), Window{})
	mustValidate(t, S, site(ts0, `"x"`, "true"), Window{})
}

// Ensure that accessed is a required boolean: no null, no string, no number.
func TestValidate_SiteAccess_Accessed(t *testing.T) {
	S := KindSiteAccess
	runInvalid(t, []invalidCase{
		{"missing", S, site(ts0, `"https://a"`, ""), Window{}, "logs[0].accessed", "", "is required (true or false)"},
		{"null", S, site(ts0, `"https://a"`, "null"), Window{}, "logs[0].accessed", "", "is required (true or false)"},
		{"string", S, site(ts0, `"https://a"`, `"true"`), Window{}, "logs[0].accessed", "", "must not be a JSON string"},
		{"number", S, site(ts0, `"https://a"`, "1"), Window{}, "logs[0].accessed", "", "must not be a JSON number"},
		{"object", S, site(ts0, `"https://a"`, "{}"), Window{}, "logs[0].accessed", "", "must not be a JSON object"},
	})
	for _, b := range []string{"true", "false"} {
		got := mustValidate(t, S, site(ts0, `"https://a"`, b), Window{})
		if !bytes.Contains(got, []byte(`"accessed":`+b)) {
			t.Errorf("accessed %s: got %s", b, got)
		}
	}
}

var (
	testNow    = time.Date(2025, 12, 10, 12, 0, 0, 0, time.UTC)
	testWindow = Window{Now: testNow, MaxAge: DefaultRetention, MaxFuture: DefaultMaxFuture}
)

func rfc(t time.Time) string { return quote(t.Format(time.RFC3339Nano)) }

// Ensure that device timestamps older than MaxAge are refused with Code
// too_old and those beyond MaxFuture with Code future, edges accepted.
func TestValidate_Window_Timestamp(t *testing.T) {
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
		loc(quote(latest.In(time.FixedZone("", -3600)).Add(time.Second).Format(time.RFC3339)), "1", "1"), testWindow, "timestamp", CodeFuture, "is in the future"})
	runInvalid(t, cases)

	for _, ts := range []time.Time{oldest, latest, testNow, testNow.Add(-24 * time.Hour)} {
		mustValidate(t, KindLocation, loc(rfc(ts), "1", "1"), testWindow)
		mustValidate(t, KindSiteAccess, site(rfc(ts), `"u"`, "true"), testWindow)
	}
}

// Ensure that a zero MaxAge or MaxFuture turns off its own check only.
func TestValidate_Window_Unbounded(t *testing.T) {
	ancient := loc(`"1970-01-01T00:00:00Z"`, "1", "1")
	farFuture := loc(`"2999-01-01T00:00:00Z"`, "1", "1")
	noAge := Window{Now: testNow, MaxFuture: time.Minute}
	noFuture := Window{Now: testNow, MaxAge: time.Hour}
	mustValidate(t, KindLocation, ancient, noAge)
	mustValidate(t, KindLocation, farFuture, noFuture)
	runInvalid(t, []invalidCase{
		{"age still checked", KindLocation, ancient, noFuture, "timestamp", CodeTooOld, "older than the retention window"},
		{"future still checked", KindLocation, farFuture, noAge, "timestamp", CodeFuture, "is in the future"},
	})
}

// Ensure that a zero Now turns every time check off (the edge's clock is
// not trustworthy yet).
func TestValidate_Window_ZeroNow(t *testing.T) {
	w := Window{MaxAge: time.Hour, MaxFuture: time.Minute}
	for _, ts := range []string{`"0001-01-01T00:00:00Z"`, `"1970-01-01T00:00:00Z"`, `"9999-12-31T23:59:59Z"`} {
		mustValidate(t, KindLocation, loc(ts, "0", "0"), w)
		mustValidate(t, KindSiteAccess, site(ts, `"u"`, "true"), w)
	}
	for _, d := range []string{`"0000-01-01"`, `"1999-12-31"`, `"9999-12-31"`} {
		mustValidate(t, KindScreenTime, screen(d, "0", ""), w)
	}
}

// Ensure that the date of a screen_time payload is checked against the
// window with a day of slack at both ends.
func TestValidate_Window_Date(t *testing.T) {
	// Now is 2025-12-10T12:00Z and Now-365d is 2024-12-10T12:00Z: a date
	// is refused when its midnight is more than a day before that, so the
	// oldest accepted date is 2024-12-10; the latest is 2025-12-11, whose
	// midnight is within Now+10m+24h.
	st := KindScreenTime
	runInvalid(t, []invalidCase{
		{"too old", st, screen(`"2024-12-09"`, "0", ""), testWindow, "date", CodeTooOld, "2024-12-09 is older than the retention window of 365 days"},
		{"far too old", st, screen(`"1999-01-01"`, "0", ""), testWindow, "date", CodeTooOld, "older than the retention window"},
		{"future", st, screen(`"2025-12-12"`, "0", ""), testWindow, "date", CodeFuture, "2025-12-12 is in the future"},
		{"far future", st, screen(`"2030-01-01"`, "0", ""), testWindow, "date", CodeFuture, "is in the future"},
	})
	for _, d := range []string{"2024-12-10", "2024-12-11", "2025-01-01", "2025-12-09", "2025-12-10", "2025-12-11"} {
		mustValidate(t, st, screen(quote(d), "0", ""), testWindow)
	}
}

// Ensure that the canonical output is compact, drops unknown fields,
// normalises timestamps to UTC, and re-validates to the same bytes.
func TestValidate_Canonical(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind Kind
		in   string
		want string
	}{
		{"screen_time", KindScreenTime,
			`{ "extra": [1,2], "child_hash": "abc", "app_wise_data": { "b": {"10": 5, "2": 3600.0, "9": 1e1}, "a": {} },
			   "total_screen_time": 7.2e3, "date": "2025-12-10" }`,
			`{"date":"2025-12-10","total_screen_time":7200,"app_wise_data":{"a":{},"b":{"10":5,"2":3600,"9":10}}}`},
		{"location", KindLocation,
			"\n {\"accuracy\": 5, \"longitude\": -74.0060, \"latitude\": 4.07128E1,\n \"timestamp\": \"2025-12-10T05:30:00.120-05:00\", \"child_hash\": null} \n",
			`{"timestamp":"2025-12-10T10:30:00.12Z","latitude":40.7128,"longitude":-74.006}`},
		{"site_access", KindSiteAccess,
			`{"logs": [{"url": "https://a/?q=<b>&c", "accessed": false, "title": "x", "timestamp": "2025-12-11T00:30:00+14:00"},
			            {"timestamp": "2025-12-10T10:30:00Z", "url": "é\u2028", "accessed": true}], "device": "pixel"}`,
			`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://a/?q=\u003cb\u003e\u0026c","accessed":false},{"timestamp":"2025-12-10T10:30:00Z","url":"é\u2028","accessed":true}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustValidate(t, tc.kind, tc.in, Window{})
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, got); err != nil || compact.String() != string(got) {
				t.Errorf("output is not compact JSON: %s (%v)", got, err)
			}
			again := mustValidate(t, tc.kind, string(got), Window{})
			if !bytes.Equal(again, got) {
				t.Errorf("not idempotent:\n1st %s\n2nd %s", got, again)
			}
		})
	}
}

// Ensure that the typed parsers return the values Validate canonicalises.
func TestParse_Values(t *testing.T) {
	st, err := ParseScreenTime([]byte(seedScreenTime), Window{})
	if err != nil || st.Date != "2025-12-10" || st.TotalSeconds != 3600 || st.Apps["com.example.app"][0] != 1800 {
		t.Errorf("ParseScreenTime = %+v, %v", st, err)
	}
	l, err := ParseLocation([]byte(loc(`"2025-12-10T11:30:00+01:00"`, "40.7128", "-74.006")), Window{})
	if err != nil || !l.Timestamp.Equal(time.Date(2025, 12, 10, 10, 30, 0, 0, time.UTC)) || l.Timestamp.Location() != time.UTC ||
		l.Latitude != 40.7128 || l.Longitude != -74.006 {
		t.Errorf("ParseLocation = %+v, %v", l, err)
	}
	sa, err := ParseSiteAccess([]byte(seedSiteAccess), Window{})
	if err != nil || len(sa.Logs) != 1 || sa.Logs[0].URL != "https://example.com" || !sa.Logs[0].Accessed ||
		sa.Logs[0].Timestamp.Location() != time.UTC {
		t.Errorf("ParseSiteAccess = %+v, %v", sa, err)
	}
	if got := HourKeys(map[int]int64{23: 1, 0: 1, 10: 1, 2: 1}); fmt.Sprint(got) != "[0 2 10 23]" {
		t.Errorf("HourKeys = %v", got)
	}
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
