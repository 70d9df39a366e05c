package hearth

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The seed-compatibility table: one row per input the seed system
// accepted, normalised or refused, with what Check does with it in
// ModeSeed (phones in the field) and in ModeStrict ("Hearth-Protocol: 2"
// and central's batch path). docs/protocol.md mirrors these rows;
//
//	go test -run TestSeedCompat -seedcompat.md=table.md .
//
// writes them as a Markdown table.
var seedCompatMarkdown = flag.String("seedcompat.md", "", "write the seed-compatibility table as Markdown to this file")

// compatRules are the rules every row is checked with: the reference
// clock is 2025-12-10T12:00Z with central's window, the sender is child
// compatChild.
var compatRules = Rules{Window: testWindow, Child: compatChild}

const compatChild = "c0ffee"

// seedRow is one row of the table.
type seedRow struct {
	Name   string
	Kind   Kind
	Data   string
	Seed   outcome // in ModeSeed
	Strict outcome // in ModeStrict
}

// outcome is what Check does with a row's input in one mode.
type outcome struct {
	Unchanged bool     // ModeStrict only: the same as in ModeSeed (which accepted)
	Refused   bool     // refused with an *InvalidError of Code and Field
	Code      string   //
	Field     string   //
	Data      string   // accepted: the canonical Data
	Notes     []string // accepted: every Note as "field reason", in order
}

func accepted(data string, notes ...string) outcome { return outcome{Data: data, Notes: notes} }

func refused(code, field string) outcome { return outcome{Refused: true, Code: code, Field: field} }

// invalidAt is the refusal of a malformed value.
func invalidAt(field string) outcome { return refused(CodeInvalid, field) }

var unchanged = outcome{Unchanged: true}

func (o outcome) String() string {
	switch {
	case o.Unchanged:
		return "as in seed mode"
	case o.Refused:
		return fmt.Sprintf("refused: %s (%s)", o.Field, o.Code)
	case len(o.Notes) == 0:
		return "accepted"
	}
	return "accepted; notes: " + strings.Join(o.Notes, ", ")
}

// Canonical forms of the seed's three examples.
const (
	canonScreenTime = `{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":{"com.example.app":{"0":1800}}}`
	canonLocation   = `{"timestamp":"2025-12-10T10:30:00Z","latitude":40.7128,"longitude":-74.006}`
	canonSiteAccess = `{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com","accessed":true}]}`
)

// stApps is a screen_time of the seed's date and total with the given app_wise_data.
func stApps(apps string) string {
	return `{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":` + apps + `}`
}

// locAt is a location of the seed's coordinates at the raw JSON timestamp ts.
func locAt(ts string) string {
	return `{"timestamp":` + ts + `,"latitude":40.7128,"longitude":-74.0060}`
}

// visits is a site_access of the given raw log entries.
func visits(entries ...string) string { return `{"logs":[` + strings.Join(entries, ",") + `]}` }

// visitOf is one log entry of the given raw values ("" omits a field).
func visitOf(ts, url, accessed string) string {
	return strings.TrimSuffix(strings.TrimPrefix(site(ts, url, accessed), `{"logs":[`), `]}`)
}

const (
	seedVisit  = `{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com","accessed":true}`
	seedURL    = `"https://example.com"`
	canonVisit = seedVisit
)

func seedCompat() []seedRow {
	ST, L, S := KindScreenTime, KindLocation, KindSiteAccess
	canonAt := func(ts string) string { return `{"timestamp":"` + ts + `","latitude":40.7128,"longitude":-74.006}` }
	canonVisitAt := func(ts string, acc bool) string {
		return visits(fmt.Sprintf(`{"timestamp":"%s","url":"https://example.com","accessed":%v}`, ts, acc))
	}
	truthy := func(name, raw string, want bool) seedRow {
		return seedRow{"accessed " + name, S, visits(visitOf(ts0, seedURL, raw)),
			accepted(canonVisitAt("2025-12-10T10:30:00Z", want), "logs[0].accessed truthy_accessed"), invalidAt("logs[0].accessed")}
	}
	many := func(n int, item func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = item(i)
		}
		return strings.Join(parts, ",")
	}
	url2048 := "https://example.com/" + strings.Repeat("a", MaxURLLen-len("https://example.com/"))
	old364 := testNow.Add(-364 * 24 * time.Hour).Format(time.RFC3339)
	old366 := testNow.Add(-366 * 24 * time.Hour).Format(time.RFC3339)
	ahead11 := testNow.Add(11 * time.Minute).Format(time.RFC3339)
	ahead9 := testNow.Add(9 * time.Minute).Format(time.RFC3339)

	return []seedRow{
		// The seed's examples.
		{"seed example screen_time", ST, seedScreenTime, accepted(canonScreenTime), unchanged},
		{"seed example location", L, seedLocation, accepted(canonLocation), unchanged},
		{"seed example site_access", S, seedSiteAccess, accepted(canonSiteAccess), unchanged},

		// Unknown fields: the seed read only its own.
		{"unknown field in screen_time", ST, `{"device":"pixel",` + seedScreenTime[1:],
			accepted(canonScreenTime, "device unknown_field"), invalidAt("device")},
		{"unknown field in location", L, `{"accuracy":5,` + seedLocation[1:],
			accepted(canonLocation, "accuracy unknown_field"), invalidAt("accuracy")},
		{"unknown field in site_access", S, `{"device":"pixel",` + seedSiteAccess[1:],
			accepted(canonSiteAccess, "device unknown_field"), invalidAt("device")},
		{"unknown field in a log entry", S, visits(visitOf(ts0, seedURL, `true,"title":"Example"`)),
			accepted(canonSiteAccess, "logs[0].title unknown_field"), invalidAt("logs[0].title")},
		{"child_hash in data naming the sender", L, `{"child_hash":"c0ffee",` + seedLocation[1:], accepted(canonLocation), unchanged},
		{"child_hash in data naming another child", L, `{"child_hash":"other",` + seedLocation[1:],
			refused(CodeChildMismatch, "child_hash"), refused(CodeChildMismatch, "child_hash")},

		// Numbers in strings, read by int() and float().
		{"total_screen_time in a string", ST, `{"date":"2025-12-10","total_screen_time":"3600","app_wise_data":{"com.example.app":{"0":1800}}}`,
			accepted(canonScreenTime, "total_screen_time number_in_string"), invalidAt("total_screen_time")},
		{"hour seconds in a string", ST, stApps(`{"com.example.app":{"0":"1800"}}`),
			accepted(canonScreenTime, "app_wise_data.com.example.app.0 number_in_string"), invalidAt("app_wise_data.com.example.app.0")},
		{"coordinates in strings", L, `{"timestamp":"2025-12-10T10:30:00Z","latitude":"40.7128","longitude":"-74.0060"}`,
			accepted(canonLocation, "latitude number_in_string", "longitude number_in_string"), invalidAt("latitude")},
		{"total_screen_time not a number", ST, `{"date":"2025-12-10","total_screen_time":"an hour","app_wise_data":{}}`,
			invalidAt("total_screen_time"), invalidAt("total_screen_time")},
		{"latitude not a number", L, `{"timestamp":"2025-12-10T10:30:00Z","latitude":"north","longitude":0}`,
			invalidAt("latitude"), invalidAt("latitude")},

		// Fractional seconds, truncated by int().
		{"fractional total_screen_time", ST, `{"date":"2025-12-10","total_screen_time":3600.7,"app_wise_data":{"com.example.app":{"0":1800}}}`,
			accepted(canonScreenTime, "total_screen_time fractional_seconds"), invalidAt("total_screen_time")},
		{"fractional hour seconds", ST, stApps(`{"com.example.app":{"0":1800.5}}`),
			accepted(canonScreenTime, "app_wise_data.com.example.app.0 fractional_seconds"), invalidAt("app_wise_data.com.example.app.0")},
		{"whole number written with a fraction", ST, `{"date":"2025-12-10","total_screen_time":3600.0,"app_wise_data":{"com.example.app":{"0":18e2}}}`,
			accepted(canonScreenTime), unchanged},

		// Hours: int() of the key, 0-23 kept; anything else skipped.
		{"hour key with a leading zero", ST, stApps(`{"com.example.app":{"00":1800}}`),
			accepted(canonScreenTime, "app_wise_data.com.example.app.00 hour_form"), invalidAt("app_wise_data.com.example.app.00")},
		{"hour key 07", ST, stApps(`{"a":{"07":60}}`),
			accepted(stApps(`{"a":{"7":60}}`), "app_wise_data.a.07 hour_form"), invalidAt("app_wise_data.a.07")},
		{"hour key 24", ST, stApps(`{"com.example.app":{"0":1800,"24":60}}`),
			accepted(canonScreenTime, "app_wise_data.com.example.app.24 bad_hour"), invalidAt("app_wise_data.com.example.app.24")},
		{"hour key -1", ST, stApps(`{"com.example.app":{"-1":60,"0":1800}}`),
			accepted(canonScreenTime, "app_wise_data.com.example.app.-1 bad_hour"), invalidAt("app_wise_data.com.example.app.-1")},
		{"hour key not an integer", ST, stApps(`{"com.example.app":{"0":1800,"1.5":60,"noon":60}}`),
			accepted(canonScreenTime, "app_wise_data.com.example.app.1.5 bad_hour", "app_wise_data.com.example.app.noon bad_hour"), invalidAt("app_wise_data.com.example.app.1.5")},
		{"hour seconds not a number", ST, stApps(`{"com.example.app":{"0":1800,"1":"x","2":null,"3":true,"4":[1]}}`),
			accepted(canonScreenTime, "app_wise_data.com.example.app.1 bad_seconds", "app_wise_data.com.example.app.2 bad_seconds",
				"app_wise_data.com.example.app.3 bad_seconds", "app_wise_data.com.example.app.4 bad_seconds"), invalidAt("app_wise_data.com.example.app.1")},
		{"hour given twice (07 and 7)", ST, stApps(`{"a":{"7":20,"07":10}}`),
			accepted(stApps(`{"a":{"7":10}}`), "app_wise_data.a.07 hour_form", "app_wise_data.a.7 duplicate"), invalidAt("app_wise_data.a.07")},
		{"app value not an object", ST, stApps(`{"com.example.app":{"0":1800},"b":1800,"c":[1],"d":"x","e":null}`),
			accepted(canonScreenTime, "app_wise_data.b not_an_object", "app_wise_data.c not_an_object", "app_wise_data.d not_an_object", "app_wise_data.e not_an_object"),
			invalidAt("app_wise_data.b")},
		{"app_wise_data a list", ST, `{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":[{"com.example.app":{"0":1800}}]}`,
			accepted(stApps(`{}`), "app_wise_data not_an_object"), invalidAt("app_wise_data")},
		{"app_wise_data a string", ST, `{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":"none"}`,
			accepted(stApps(`{}`), "app_wise_data not_an_object"), invalidAt("app_wise_data")},
		{"app_wise_data empty", ST, stApps(`{}`), accepted(stApps(`{}`)), unchanged},
		{"hours summing past the total", ST, `{"date":"2025-12-10","total_screen_time":60,"app_wise_data":{"a":{"0":3600,"1":3600}}}`,
			accepted(`{"date":"2025-12-10","total_screen_time":60,"app_wise_data":{"a":{"0":3600,"1":3600}}}`), unchanged},

		// Times: Django's DateTimeField forms; without a zone, UTC.
		{"timestamp without a zone", L, locAt(`"2025-12-10T10:30:00"`),
			accepted(canonLocation, "timestamp time_without_zone"), invalidAt("timestamp")},
		{"timestamp without a zone, fractional", L, locAt(`"2025-12-10T10:30:00.250"`),
			accepted(canonAt("2025-12-10T10:30:00.25Z"), "timestamp time_without_zone"), invalidAt("timestamp")},
		{"timestamp with a space instead of T", L, locAt(`"2025-12-10 10:30:00Z"`),
			accepted(canonLocation, "timestamp time_form"), invalidAt("timestamp")},
		{"timestamp as Python's str() of a naive datetime", L, locAt(`"2025-12-10 10:30:00.000001"`),
			accepted(canonAt("2025-12-10T10:30:00.000001Z"), "timestamp time_without_zone"), invalidAt("timestamp")},
		{"timestamp as Python's str() of an aware datetime", L, locAt(`"2025-12-10 16:00:00+05:30"`),
			accepted(canonLocation, "timestamp time_form"), invalidAt("timestamp")},
		{"timestamp with a ±HHMM zone", L, locAt(`"2025-12-10T16:00:00+0530"`),
			accepted(canonLocation, "timestamp time_form"), invalidAt("timestamp")},
		{"timestamp with a ±HH zone", L, locAt(`"2025-12-10T05:30:00-05"`),
			accepted(canonLocation, "timestamp time_form"), invalidAt("timestamp")},
		{"timestamp without seconds", L, locAt(`"2025-12-10T10:30Z"`),
			accepted(canonLocation, "timestamp time_form"), invalidAt("timestamp")},
		{"timestamp without seconds or zone", L, locAt(`"2025-12-10T10:30"`),
			accepted(canonLocation, "timestamp time_without_zone"), invalidAt("timestamp")},
		{"timestamp of a date only", L, locAt(`"2025-12-10"`),
			accepted(canonAt("2025-12-10T00:00:00Z"), "timestamp time_without_zone"), invalidAt("timestamp")},
		{"log timestamp without a zone", S, visits(visitOf(`"2025-12-10 10:30:00"`, seedURL, "true")),
			accepted(canonSiteAccess, "logs[0].timestamp time_without_zone"), invalidAt("logs[0].timestamp")},
		{"timestamp with a +05:30 offset", L, locAt(`"2025-12-10T16:00:00+05:30"`), accepted(canonLocation), unchanged},
		{"timestamp with a fraction", L, locAt(`"2025-12-10T10:30:00.123456789Z"`), accepted(canonAt("2025-12-10T10:30:00.123456789Z")), unchanged},
		{"timestamp not a time", L, locAt(`"yesterday"`), invalidAt("timestamp"), invalidAt("timestamp")},
		{"timestamp a number", L, locAt(`1765362600`), invalidAt("timestamp"), invalidAt("timestamp")},

		// Dates: Django's parse_date.
		{"date without zero padding", ST, `{"date":"2025-1-5","total_screen_time":60,"app_wise_data":{}}`,
			accepted(`{"date":"2025-01-05","total_screen_time":60,"app_wise_data":{}}`, "date date_form"), invalidAt("date")},
		{"date missing", ST, `{"total_screen_time":3600,"app_wise_data":{}}`, invalidAt("date"), invalidAt("date")},
		{"date null", ST, `{"date":null,"total_screen_time":3600,"app_wise_data":{}}`, invalidAt("date"), invalidAt("date")},
		{"date not a date (February 30)", ST, `{"date":"2025-02-30","total_screen_time":3600,"app_wise_data":{}}`, invalidAt("date"), invalidAt("date")},
		{"date with slashes", ST, `{"date":"2025/12/10","total_screen_time":3600,"app_wise_data":{}}`, invalidAt("date"), invalidAt("date")},
		{"date a word", ST, `{"date":"today","total_screen_time":3600,"app_wise_data":{}}`, invalidAt("date"), invalidAt("date")},

		// Required screen_time fields and bounds on seconds.
		{"total_screen_time missing", ST, `{"date":"2025-12-10","app_wise_data":{}}`, invalidAt("total_screen_time"), invalidAt("total_screen_time")},
		{"app_wise_data missing", ST, `{"date":"2025-12-10","total_screen_time":3600}`, invalidAt("app_wise_data"), invalidAt("app_wise_data")},
		{"negative total_screen_time", ST, `{"date":"2025-12-10","total_screen_time":-1,"app_wise_data":{}}`, invalidAt("total_screen_time"), invalidAt("total_screen_time")},
		{"negative hour seconds", ST, stApps(`{"com.example.app":{"0":-1800}}`), invalidAt("app_wise_data.com.example.app.0"), invalidAt("app_wise_data.com.example.app.0")},
		{"total_screen_time above a day", ST, `{"date":"2025-12-10","total_screen_time":86401,"app_wise_data":{}}`, invalidAt("total_screen_time"), invalidAt("total_screen_time")},
		{"hour seconds above an hour", ST, stApps(`{"com.example.app":{"0":3601}}`), invalidAt("app_wise_data.com.example.app.0"), invalidAt("app_wise_data.com.example.app.0")},
		{"app id empty", ST, stApps(`{"":{"0":1}}`), invalidAt("app_wise_data"), invalidAt("app_wise_data")},
		{"app id of 255 bytes", ST, stApps(`{"` + strings.Repeat("a", 255) + `":{}}`), accepted(stApps(`{"` + strings.Repeat("a", 255) + `":{}}`)), unchanged},
		{"app id of 256 bytes", ST, stApps(`{"` + strings.Repeat("a", 256) + `":{}}`),
			invalidAt("app_wise_data." + strings.Repeat("a", 64) + "…"), invalidAt("app_wise_data." + strings.Repeat("a", 64) + "…")},
		{"app id with NUL", ST, stApps(`{"com.example\u0000app":{"0":1}}`), invalidAt(`app_wise_data."com.example\x00app"`), invalidAt(`app_wise_data."com.example\x00app"`)},
		{"app id with a newline", ST, stApps(`{"com.example\napp":{"0":1}}`), invalidAt(`app_wise_data."com.example\napp"`), invalidAt(`app_wise_data."com.example\napp"`)},
		{"1000 apps", ST, stApps(`{` + many(MaxApps, func(i int) string { return fmt.Sprintf(`"app%04d":{}`, i) }) + `}`),
			accepted(stApps(`{` + many(MaxApps, func(i int) string { return fmt.Sprintf(`"app%04d":{}`, i) }) + `}`)), unchanged},
		{"1001 apps", ST, stApps(`{` + many(MaxApps+1, func(i int) string { return fmt.Sprintf(`"app%04d":{}`, i) }) + `}`),
			invalidAt("app_wise_data"), invalidAt("app_wise_data")},

		// Locations.
		{"location without latitude", L, `{"timestamp":"2025-12-10T10:30:00Z","longitude":-74.0060}`, invalidAt("latitude"), invalidAt("latitude")},
		{"location without longitude", L, `{"timestamp":"2025-12-10T10:30:00Z","latitude":40.7128}`, invalidAt("longitude"), invalidAt("longitude")},
		{"location without timestamp", L, `{"latitude":40.7128,"longitude":-74.0060}`, invalidAt("timestamp"), invalidAt("timestamp")},
		{"latitude beyond 90", L, `{"timestamp":"2025-12-10T10:30:00Z","latitude":90.5,"longitude":0}`, invalidAt("latitude"), invalidAt("latitude")},
		{"longitude beyond 180", L, `{"timestamp":"2025-12-10T10:30:00Z","latitude":0,"longitude":-181}`, invalidAt("longitude"), invalidAt("longitude")},

		// Site access logs.
		{"logs missing", S, `{}`, accepted(noSites, "logs missing_logs"), invalidAt("logs")},
		{"logs null", S, `{"logs":null}`, accepted(noSites, "logs missing_logs"), invalidAt("logs")},
		{"logs empty", S, `{"logs":[]}`, accepted(noSites), invalidAt("logs")},
		{"logs not a list (an object)", S, `{"logs":` + seedVisit + `}`, invalidAt("logs"), invalidAt("logs")},
		{"logs not a list (a string)", S, `{"logs":"none"}`, invalidAt("logs"), invalidAt("logs")},
		{"log entry not an object (a string)", S, visits(seedVisit, `"https://example.com"`), invalidAt("logs[1]"), invalidAt("logs[1]")},
		{"log entry not an object (null)", S, visits(`null`, seedVisit), invalidAt("logs[0]"), invalidAt("logs[0]")},
		{"log entry not an object (a list)", S, visits(`[` + seedVisit + `]`), invalidAt("logs[0]"), invalidAt("logs[0]")},
		{"log entry without timestamp", S, visits(visitOf("", seedURL, "true"), seedVisit),
			accepted(canonSiteAccess, "logs[0].timestamp incomplete_visit"), invalidAt("logs[0].timestamp")},
		{"log entry with an empty timestamp", S, visits(visitOf(`""`, seedURL, "true"), seedVisit),
			accepted(canonSiteAccess, "logs[0].timestamp incomplete_visit"), invalidAt("logs[0].timestamp")},
		{"log entry without url", S, visits(seedVisit, visitOf(ts0, "", "true")),
			accepted(canonSiteAccess, "logs[1].url incomplete_visit"), invalidAt("logs[1].url")},
		{"log entry with an empty url", S, visits(seedVisit, visitOf(ts0, `""`, "true")),
			accepted(canonSiteAccess, "logs[1].url incomplete_visit"), invalidAt("logs[1].url")},
		{"log entry without accessed", S, visits(seedVisit, visitOf(ts0, seedURL, "")),
			accepted(canonSiteAccess, "logs[1].accessed incomplete_visit"), invalidAt("logs[1].accessed")},
		{"log entry with accessed null", S, visits(seedVisit, visitOf(ts0, seedURL, "null")),
			accepted(canonSiteAccess, "logs[1].accessed incomplete_visit"), invalidAt("logs[1].accessed")},
		{"every log entry incomplete", S, visits(visitOf("", seedURL, "true")),
			accepted(noSites, "logs[0].timestamp incomplete_visit"), invalidAt("logs[0].timestamp")},
		truthy(`"yes"`, `"yes"`, true),
		truthy(`"false"`, `"false"`, true),
		truthy(`""`, `""`, false),
		truthy("0", "0", false),
		truthy("1", "1", true),
		truthy(`"true"`, `"true"`, true),
		{"url with NUL", S, visits(visitOf(ts0, `"https://example.com/\u0000x"`, "true")),
			accepted(visits(`{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com/%00x","accessed":true}`), "logs[0].url url_control_chars"), unchanged},
		{"url with a tab and a newline", S, visits(visitOf(ts0, `"https://example.com/a\tb\n"`, "true")),
			accepted(visits(`{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com/a%09b%0A","accessed":true}`), "logs[0].url url_control_chars"), unchanged},
		{"url in Unicode", S, visits(visitOf(ts0, `"https://例え.jp/ü"`, "true")),
			accepted(visits(`{"timestamp":"2025-12-10T10:30:00Z","url":"https://例え.jp/ü","accessed":true}`)), unchanged},
		{"url of 2048 bytes", S, visits(visitOf(ts0, quote(url2048), "true")),
			accepted(visits(`{"timestamp":"2025-12-10T10:30:00Z","url":"` + url2048 + `","accessed":true}`)), unchanged},
		{"url of 2049 bytes", S, visits(visitOf(ts0, quote(url2048+"a"), "true")), invalidAt("logs[0].url"), invalidAt("logs[0].url")},
		{"url not a string", S, visits(visitOf(ts0, `42`, "true")), invalidAt("logs[0].url"), invalidAt("logs[0].url")},
		{"1000 log entries", S, visits(many(MaxLogs, func(int) string { return seedVisit })),
			accepted(visits(many(MaxLogs, func(int) string { return canonVisit }))), unchanged},
		{"1001 log entries", S, visits(many(MaxLogs+1, func(int) string { return seedVisit })), invalidAt("logs"), invalidAt("logs")},

		// Time bounds: absolute, and the window around the reference clock.
		{"timestamp in 1999", L, locAt(`"1999-12-31T23:59:59Z"`), refused(CodeTooOld, "timestamp"), refused(CodeTooOld, "timestamp")},
		{"timestamp in year 1", L, locAt(`"0001-01-01T00:00:00Z"`), refused(CodeTooOld, "timestamp"), refused(CodeTooOld, "timestamp")},
		{"timestamp in 2100", L, locAt(`"2100-01-01T00:00:00Z"`), refused(CodeFuture, "timestamp"), refused(CodeFuture, "timestamp")},
		{"timestamp in year 9999", L, locAt(`"9999-12-31T23:59:59Z"`), refused(CodeFuture, "timestamp"), refused(CodeFuture, "timestamp")},
		{"timestamp 364 days old", L, locAt(quote(old364)), accepted(canonAt(old364)), unchanged},
		{"timestamp 366 days old", L, locAt(quote(old366)), refused(CodeTooOld, "timestamp"), refused(CodeTooOld, "timestamp")},
		{"timestamp 9 minutes ahead", L, locAt(quote(ahead9)), accepted(canonAt(ahead9)), unchanged},
		{"timestamp 11 minutes ahead", L, locAt(quote(ahead11)), refused(CodeFuture, "timestamp"), refused(CodeFuture, "timestamp")},
		{"log timestamp 366 days old", S, visits(visitOf(quote(old366), seedURL, "true")), refused(CodeTooOld, "logs[0].timestamp"), refused(CodeTooOld, "logs[0].timestamp")},
		{"date 366 days old", ST, `{"date":"2024-12-09","total_screen_time":60,"app_wise_data":{}}`, refused(CodeTooOld, "date"), refused(CodeTooOld, "date")},
		{"date of tomorrow", ST, `{"date":"2025-12-11","total_screen_time":60,"app_wise_data":{}}`,
			accepted(`{"date":"2025-12-11","total_screen_time":60,"app_wise_data":{}}`), unchanged},
		{"date of the day after tomorrow", ST, `{"date":"2025-12-12","total_screen_time":60,"app_wise_data":{}}`, refused(CodeFuture, "date"), refused(CodeFuture, "date")},

		// The message itself.
		{"unknown kind", "heartbeat", `{}`, refused(CodeUnknownType, "type"), refused(CodeUnknownType, "type")},
		{"data a list", L, `[` + seedLocation + `]`, invalidAt("data"), invalidAt("data")},
		{"data a string", S, `"logs"`, invalidAt("data"), invalidAt("data")},
		{"data null", ST, `null`, invalidAt("data"), invalidAt("data")},
		{"data not JSON", L, `{"timestamp":`, invalidAt("data"), invalidAt("data")},
	}
}

// Ensure that every input of the seed-compatibility table is accepted,
// normalised (with its notes) or refused exactly as the table says, in
// ModeSeed and in ModeStrict.
func TestSeedCompat(t *testing.T) {
	rows := seedCompat()
	seen := map[string]bool{}
	names := map[string]bool{}
	for _, row := range rows {
		if names[row.Name] {
			t.Errorf("row %q appears twice", row.Name)
		}
		names[row.Name] = true
		t.Run(row.Name, func(t *testing.T) {
			if row.Seed.Unchanged {
				t.Fatal("BUG: Unchanged is for the strict outcome")
			}
			strict := row.Strict
			if strict.Unchanged {
				if row.Seed.Refused {
					t.Fatal("BUG: strict unchanged after a seed refusal")
				}
				strict = row.Seed
			}
			for _, n := range checkOutcome(t, row, ModeSeed, row.Seed) {
				seen[n.Reason] = true
			}
			checkOutcome(t, row, ModeStrict, strict)
		})
	}
	// Every reason Check can give appears in the table (logs_as_list is
	// the HTTP body's, not Check's).
	for reason := range noteReasons {
		if !seen[reason] && reason != NoteLogsList {
			t.Errorf("no row shows note reason %s", reason)
		}
	}
	if *seedCompatMarkdown != "" {
		if err := os.WriteFile(*seedCompatMarkdown, seedCompatTable(rows), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func checkOutcome(t *testing.T, row seedRow, m Mode, want outcome) []Note {
	t.Helper()
	r := compatRules
	r.Mode = m
	c, err := Check(row.Kind, []byte(row.Data), r)
	if want.Refused {
		assertInvalid(t, c, err, want.Field, want.Code, "")
		return nil
	}
	if err != nil {
		t.Fatalf("%s: refused %v; want %s", modeName(m), err, want)
	}
	if string(c.Data) != want.Data {
		t.Errorf("%s: Data\n got  %s\n want %s", modeName(m), clip(string(c.Data)), clip(want.Data))
	}
	if got := noteList(c.Notes); fmt.Sprint(got) != fmt.Sprint(want.Notes) {
		t.Errorf("%s: notes\n got  %q\n want %q", modeName(m), got, want.Notes)
	}
	for _, n := range c.Notes {
		if ignored, ok := noteReasons[n.Reason]; !ok || ignored != n.Ignored || n.Text == "" {
			t.Errorf("%s: note %+v: unknown reason, wrong Ignored or no text", modeName(m), n)
		}
	}
	// What was accepted checks again in ModeStrict unchanged, unless it
	// holds no rows (acknowledged, never stored or forwarded).
	again, err := Check(row.Kind, c.Data, Rules{Mode: ModeStrict, Window: r.Window})
	if c.Payload.Rows() == 0 {
		assertInvalid(t, again, err, "logs", CodeInvalid, "must not be empty")
	} else if err != nil || !bytes.Equal(again.Data, c.Data) || len(again.Notes) != 0 {
		t.Errorf("%s: canonical Data checks again as %s, %v, %v", modeName(m), again.Data, again.Notes, err)
	}
	return c.Notes
}

// seedCompatTable renders the rows as Markdown for docs/protocol.md.
func seedCompatTable(rows []seedRow) []byte {
	var b strings.Builder
	b.WriteString("| case | type | data | seed mode | strict mode |\n|---|---|---|---|---|\n")
	cell := func(s string) string {
		if r := []rune(s); len(r) > 120 {
			s = string(r[:120]) + "…"
		}
		return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
	}
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.Name, row.Kind, cell(row.Data), row.Seed, row.Strict)
	}
	return []byte(b.String())
}
