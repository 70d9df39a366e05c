package apptest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

// edgeCase is one frame of the message contract's end-to-end test: either
// the edge refuses it with code, or central ends up storing rows.
type edgeCase struct {
	name string
	kind string
	data string
	code string         // the edge's refusal code; "" when it must be acked
	rows map[string]int // rows central must hold for an acked frame, by table
}

// contractCases are the edge cases of the message contract, each with a
// distinct key so that every stored row is counted once.
func contractCases(now time.Time) []edgeCase {
	ts := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339Nano) }
	day := func(d time.Duration) string { return now.Add(d).UTC().Format("2006-01-02") }
	loc := func(t string) string { return fmt.Sprintf(`{"timestamp":%q,"latitude":48.85,"longitude":2.35}`, t) }
	visit := func(t, url string) string {
		return fmt.Sprintf(`{"logs":[{"timestamp":%q,"url":%s,"accessed":true}]}`, t, url)
	}
	st := func(date, apps string) string {
		return fmt.Sprintf(`{"date":%q,"total_screen_time":600,"app_wise_data":%s}`, date, apps)
	}
	url2048 := `"https://example.com/` + strings.Repeat("a", 2048-len("https://example.com/")) + `"`
	one := func(table string, n int) map[string]int { return map[string]int{table: n} }
	return []edgeCase{
		{"location an hour ahead", "location", loc(ts(time.Hour)), "future", nil},
		{"location two days ahead", "location", loc(ts(48 * time.Hour)), "future", nil},
		{"location in year 9999", "location", loc("9999-01-01T00:00:00Z"), "future", nil},
		{"screen_time for 2099-01-01", "screen_time", st("2099-01-01", `{}`), "future", nil},
		{"visit three days ahead", "site_access", visit(ts(72*time.Hour), `"https://ahead.example"`), "future", nil},
		{"location in year 1", "location", loc("0001-01-01T00:00:00Z"), "too_old", nil},
		{"location 366 days old", "location", loc(ts(-366 * 24 * time.Hour)), "too_old", nil},
		{"app id with NUL", "screen_time", st(day(-24*time.Hour), `{"com.a\u0000b":{"1":60}}`), "invalid", nil},
		{"app id with a control character", "screen_time", st(day(-24*time.Hour), `{"com.a\u0001b":{"1":60}}`), "invalid", nil},
		{"app id of 256 bytes", "screen_time", st(day(-24*time.Hour), `{"`+strings.Repeat("a", 256)+`":{"1":60}}`), "invalid", nil},
		{"URL of 2049 bytes", "site_access", visit(ts(-time.Minute), url2048[:len(url2048)-1]+`b"`), "invalid", nil},
		{"screen_time with apps instead of app_wise_data", "screen_time", fmt.Sprintf(`{"date":%q,"total_screen_time":5,"apps":[{"name":"x","seconds":5}]}`, day(-48*time.Hour)), "invalid", nil},
		{"location 1 s ahead", "location", loc(ts(time.Second)), "", one("locations", 1)},
		{"location 364 days old", "location", loc(ts(-364 * 24 * time.Hour)), "", one("locations", 1)},
		{"location with a +05:30 zone", "location", loc(now.Add(-2 * time.Minute).In(time.FixedZone("IST", 5*3600+1800)).Format(time.RFC3339)), "", one("locations", 1)},
		{"location without a zone (seed: UTC)", "location", loc(now.Add(-3 * time.Minute).UTC().Format("2006-01-02T15:04:05")), "", one("locations", 1)},
		{"URL with NUL", "site_access", visit(ts(-4*time.Minute), `"https://nul.example/a\u0000b"`), "", one("site_access", 1)},
		{"URL with tab, newline and DEL", "site_access", visit(ts(-5*time.Minute), `"https://ctl.example/a\tb\nc\u007f"`), "", one("site_access", 1)},
		{"Unicode URL", "site_access", visit(ts(-6*time.Minute), `"https://例え.テスト/パス?q=é"`), "", one("site_access", 1)},
		{"URL of exactly 2048 bytes", "site_access", visit(ts(-7*time.Minute), url2048), "", one("site_access", 1)},
		{"empty logs (seed: count 0)", "site_access", `{"logs":[]}`, "", nil},
		{"missing logs (seed: count 0)", "site_access", `{}`, "", nil},
		{"hours summing past the day total", "screen_time", st(day(-72*time.Hour), `{"com.a":{"1":3600,"2":3600}}`), "", map[string]int{"screen_time": 1, "app_screen_time": 2}},
		{"hour 25 and fractional seconds (seed: skipped, truncated)", "screen_time", st(day(-96*time.Hour), `{"com.b":{"25":60,"3":59.9}}`), "", map[string]int{"screen_time": 1, "app_screen_time": 1}},
		{"truthy accessed and an incomplete visit", "site_access", fmt.Sprintf(`{"logs":[{"timestamp":%q,"url":"https://truthy.example","accessed":"yes"},{"url":"https://incomplete.example"}]}`, ts(-8*time.Minute)), "", one("site_access", 1)},
		{"screen_time 364 days old", "screen_time", st(day(-364*24*time.Hour), `{}`), "", one("screen_time", 1)},
	}
}

// Ensure that the message contract holds end to end: each edge-case frame
// is either refused at the edge with a clear error and code, or stored at
// central, and the edge ends with zero dead letters.
func TestContract_EdgeCasesThroughEdgeAndCentral(t *testing.T) {
	c := StartCentral(t, CentralSQLite(t))
	home, token := CentralAddHome(t, c.DB, "contract")
	child := CentralAddChild(t, c.DB, home, "")
	d := forwardingHearthd(t, t.TempDir(), c, token)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if getStatus(t, d)["clock_trusted"] != true {
			return fmt.Errorf("edge has not measured central's clock yet")
		}
		return nil
	})
	conn := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/"+child+"/")
	conn.Expect("connection_established")
	want := map[string]int{}
	cases := contractCases(time.Now())
	for _, tc := range cases {
		conn.Send(ingesttest.Frame(tc.kind, tc.data))
		r := conn.Read()
		switch {
		case tc.code == "" && r.Type != "ack":
			t.Errorf("%s: %s %q (code %s), want an ack", tc.name, r.Type, r.Message, r.Code)
		case tc.code != "" && (r.Type != "error" || r.Code != tc.code || r.Message == ""):
			t.Errorf("%s: %s %q (code %q), want an error with code %q", tc.name, r.Type, r.Message, r.Code, tc.code)
		}
		for table, n := range tc.rows {
			want[table] += n
		}
	}
	if t.Failed() {
		return
	}
	testutil.WaitFor(t, 15*time.Second, func() error {
		if depth := statusNumber(t, d, "outbox_depth"); depth != 0 {
			return fmt.Errorf("outbox depth %v", depth)
		}
		return nil
	})
	if dead := statusNumber(t, d, "dead_letters"); dead != 0 {
		t.Fatalf("%v dead letters at the edge: central refused what the edge acked\n%s", dead, d.Log())
	}
	got := CentralStats(t, c.DB)
	for table, n := range want {
		if got[table] != int64(n) {
			t.Errorf("central %s: %d rows, want %d", table, got[table], n)
		}
	}
	t.Logf("%d frames: central holds %v", len(cases), got)
}
