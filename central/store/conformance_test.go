package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// conformance is the suite every engine must pass; each case gets a fresh
// database holding the fixture.
var conformance = []struct {
	name string
	fn   func(t *testing.T, f *fixture)
}{
	{"ScreenTime_NewerReplaces", testScreenTimeNewerReplaces},
	{"ScreenTime_OlderDoesNotOverwrite", testScreenTimeOlderIgnored},
	{"Tie_LargerValueWins_InAnyOrder", testTie},
	{"AppHours_MergePerHour", testAppHoursMerge},
	{"Location_Upsert", testLocationUpsert},
	{"SiteAccess_Upsert", testSiteAccessUpsert},
	{"Replay_SameBatch", testReplay},
	{"DuplicatesInsideOneBatch", testDuplicatesInBatch},
	{"ReceivedAt_MicrosecondPrecision", testReceivedAtPrecision},
	{"Retention_RejectsTooOldAndFuture", testRetentionRejects},
	{"Retention_Prune", testPrune},
	{"Retention_PruneBatches", testPruneBatches},
	{"Tenancy", testTenancy},
	{"InvalidPayloads", testInvalid},
	{"Payload_WrittenAsChecked", testPayloadAsChecked},
	{"Tokens_StoredHashed", testTokens},
	{"Children", testChildren},
	{"Homes_ClockOffset", testHomes},
	{"Stats", testStats},
	{"Read_Ranges", testReadRanges},
	{"Read_Pages", testReadPages},
	{"Floats_RoundTrip", testFloats},
	{"Strings_RoundTrip", testStrings},
	{"ConcurrentBatches", testConcurrent},
	{"Closed_Unavailable", testClosed},
}

// Ensure that every engine implements every update_or_create rule and
// the rest of the Store contract the same way.
func TestStore_Conformance(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		for _, c := range conformance {
			t.Run(c.name, func(t *testing.T) { c.fn(t, newFixture(t, e)) })
		}
	})
}

func wantTables(t *testing.T, got, want tables) {
	t.Helper()
	if d := got.diff(want); d != "" {
		t.Fatalf("tables differ:\n%s", d)
	}
}

func testScreenTimeNewerReplaces(t *testing.T, f *fixture) {
	applyOK(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 100, map[string]map[int]int64{"app": {0: 60}}, at(-time.Hour)))
	applyOK(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 200, map[string]map[int]int64{"app": {0: 90}}, at(-time.Minute)))
	wantTables(t, dump(t, f.s), tables{
		Days:  []string{"child-a1 2025-12-09 total=200 recv=2025-12-10T11:59:00Z"},
		Hours: []string{"child-a1 2025-12-09 app h0 secs=90 recv=2025-12-10T11:59:00Z"},
	})
}

func testScreenTimeOlderIgnored(t *testing.T, f *fixture) {
	// The phone sent the newer day straight to central; the edge's backlog
	// with the older one arrives afterwards.
	applyOK(t, f.s, "", stMsg(f.a1, "2025-12-09", 200, map[string]map[int]int64{"app": {0: 90}}, at(-time.Minute)))
	applyOK(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 100, map[string]map[int]int64{"app": {0: 60}}, at(-time.Hour)))
	wantTables(t, dump(t, f.s), tables{
		Days:  []string{"child-a1 2025-12-09 total=200 recv=2025-12-10T11:59:00Z"},
		Hours: []string{"child-a1 2025-12-09 app h0 secs=90 recv=2025-12-10T11:59:00Z"},
	})
}

func testTie(t *testing.T, f *fixture) {
	r := at(-time.Hour)
	ts := at(-2 * time.Hour)
	small := []hearthMsg{
		stMsg(f.a1, "2025-12-09", 100, map[string]map[int]int64{"app": {3: 10}}, r),
		locMsg(f.a1, ts, 1.5, 2.5, r),
		siteMsg(f.a1, r, visit{ts, "https://x.example", false}),
	}
	large := []hearthMsg{
		stMsg(f.a1, "2025-12-09", 300, map[string]map[int]int64{"app": {3: 30}}, r),
		locMsg(f.a1, ts, 1.5, 3.5, r),
		siteMsg(f.a1, r, visit{ts, "https://x.example", true}),
	}
	want := tables{
		Days:  []string{"child-a1 2025-12-09 total=300 recv=2025-12-10T11:00:00Z"},
		Hours: []string{"child-a1 2025-12-09 app h3 secs=30 recv=2025-12-10T11:00:00Z"},
		Locs:  []string{"child-a1 2025-12-10T10:00:00Z lat=1.5 lon=3.5 recv=2025-12-10T11:00:00Z"},
		Sites: []string{"child-a1 2025-12-10T10:00:00Z https://x.example accessed=true recv=2025-12-10T11:00:00Z"},
	}
	applyOK(t, f.s, f.homeA, large...)
	applyOK(t, f.s, f.homeA, small...)
	wantTables(t, dump(t, f.s), want)

	g := newFixture(t, engineOf(f))
	applyOK(t, g.s, g.homeA, small...)
	applyOK(t, g.s, g.homeA, large...)
	wantTables(t, dump(t, g.s), want)
}

func testAppHoursMerge(t *testing.T, f *fixture) {
	applyOK(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 100, map[string]map[int]int64{"a": {0: 10, 1: 20}}, at(-3*time.Hour)))
	applyOK(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 150, map[string]map[int]int64{"a": {1: 30}, "b": {5: 40}}, at(-2*time.Hour)))
	// An older message: its new rows are stored, its stale rows are not.
	applyOK(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 50, map[string]map[int]int64{"a": {0: 99, 2: 5}}, at(-4*time.Hour)))
	wantTables(t, dump(t, f.s), tables{
		Days: []string{"child-a1 2025-12-09 total=150 recv=2025-12-10T10:00:00Z"},
		Hours: []string{
			"child-a1 2025-12-09 a h0 secs=10 recv=2025-12-10T09:00:00Z",
			"child-a1 2025-12-09 a h1 secs=30 recv=2025-12-10T10:00:00Z",
			"child-a1 2025-12-09 a h2 secs=5 recv=2025-12-10T08:00:00Z",
			"child-a1 2025-12-09 b h5 secs=40 recv=2025-12-10T10:00:00Z",
		},
	})
	days, err := f.s.ScreenTime(context.Background(), f.a1, "2025-12-09", "2025-12-09")
	if err != nil {
		t.Fatal(err)
	}
	want := []ScreenTimeDay{{Date: "2025-12-09", TotalSeconds: 150, ReceivedAt: at(-2 * time.Hour),
		Apps: map[string]map[int]int64{"a": {0: 10, 1: 30, 2: 5}, "b": {5: 40}}}}
	if fmt.Sprint(days) != fmt.Sprint(want) {
		t.Fatalf("ScreenTime = %v, want %v", days, want)
	}
}

func testLocationUpsert(t *testing.T, f *fixture) {
	ts1, ts2 := at(-3*time.Hour), at(-2*time.Hour)
	applyOK(t, f.s, f.homeA, locMsg(f.a1, ts1, 40.7128, -74.006, at(-time.Hour)), locMsg(f.a1, ts2, 1, 2, at(-time.Hour)))
	applyOK(t, f.s, f.homeA, locMsg(f.a1, ts1, 41, -75, at(-time.Minute))) // newer: replaces
	applyOK(t, f.s, f.homeA, locMsg(f.a1, ts2, 9, 9, at(-2*time.Hour)))    // older: ignored
	applyOK(t, f.s, f.homeA, locMsg(f.a2, ts1, 5, 6, at(-2*time.Hour)))    // other child: own row
	wantTables(t, dump(t, f.s), tables{Locs: []string{
		"child-a1 2025-12-10T09:00:00Z lat=41 lon=-75 recv=2025-12-10T11:59:00Z",
		"child-a1 2025-12-10T10:00:00Z lat=1 lon=2 recv=2025-12-10T11:00:00Z",
		"child-a2 2025-12-10T09:00:00Z lat=5 lon=6 recv=2025-12-10T10:00:00Z",
	}})
}

func testSiteAccessUpsert(t *testing.T, f *fixture) {
	ts := at(-3 * time.Hour)
	applyOK(t, f.s, f.homeA, siteMsg(f.a1, at(-time.Hour), visit{ts, "https://a.example", true}, visit{ts, "https://b.example", true}))
	applyOK(t, f.s, f.homeA, siteMsg(f.a1, at(-time.Minute), visit{ts, "https://a.example", false}))
	applyOK(t, f.s, f.homeA, siteMsg(f.a1, at(-2*time.Hour), visit{ts, "https://b.example", false}, visit{ts.Add(time.Second), "https://b.example", false}))
	wantTables(t, dump(t, f.s), tables{Sites: []string{
		"child-a1 2025-12-10T09:00:00Z https://a.example accessed=false recv=2025-12-10T11:59:00Z",
		"child-a1 2025-12-10T09:00:00Z https://b.example accessed=true recv=2025-12-10T11:00:00Z",
		"child-a1 2025-12-10T09:00:01Z https://b.example accessed=false recv=2025-12-10T10:00:00Z",
	}})
}

// mixedBatch has every kind, for two children.
func mixedBatch(f *fixture) []hearthMsg {
	return []hearthMsg{
		stMsg(f.a1, "2025-12-09", 100, map[string]map[int]int64{"a": {0: 10, 23: 20}, "b": {7: 5}}, at(-time.Hour)),
		stMsg(f.a2, "2025-12-10", 30, nil, at(-time.Hour)),
		locMsg(f.a1, at(-2*time.Hour), 1, 2, at(-time.Hour)),
		locMsg(f.a2, at(-2*time.Hour), 3, 4, at(-time.Hour)),
		siteMsg(f.a1, at(-time.Hour), visit{at(-2 * time.Hour), "https://x.example", true}, visit{at(-2 * time.Hour), "https://y.example", false}),
	}
}

func testReplay(t *testing.T, f *fixture) {
	ctx := context.Background()
	batch := mixedBatch(f)
	applyOK(t, f.s, f.homeA, batch...)
	first := dump(t, f.s)
	stats, _ := f.s.Stats(ctx)
	for range 3 {
		applyOK(t, f.s, f.homeA, batch...)
		applyOK(t, f.s, "", batch...) // the phone resent it straight to central
	}
	wantTables(t, dump(t, f.s), first)
	again, _ := f.s.Stats(ctx)
	if fmt.Sprint(again) != fmt.Sprint(stats) {
		t.Fatalf("stats after replays = %v, want %v", again, stats)
	}
	if stats["screen_time"] != 2 || stats["app_screen_time"] != 3 || stats["locations"] != 2 || stats["site_access"] != 2 {
		t.Fatalf("stats = %v", stats)
	}
}

func testDuplicatesInBatch(t *testing.T, f *fixture) {
	// Each message's device times are judged against its own received_at,
	// so they precede the oldest of them.
	ts := at(-4 * time.Hour)
	batch := []hearthMsg{
		stMsg(f.a1, "2025-12-09", 100, map[string]map[int]int64{"a": {0: 10}}, at(-3*time.Hour)),
		stMsg(f.a1, "2025-12-09", 300, map[string]map[int]int64{"a": {0: 30}}, at(-time.Hour)),
		stMsg(f.a1, "2025-12-09", 200, map[string]map[int]int64{"a": {0: 20}}, at(-2*time.Hour)),
		locMsg(f.a1, ts, 1, 1, at(-3*time.Hour)),
		locMsg(f.a1, ts, 3, 3, at(-time.Hour)),
		locMsg(f.a1, ts, 2, 2, at(-2*time.Hour)),
		siteMsg(f.a1, at(-2*time.Hour), visit{ts, "u", true}, visit{ts, "u", false}),
		siteMsg(f.a1, at(-time.Hour), visit{ts, "u", false}),
		siteMsg(f.a1, at(-3*time.Hour), visit{ts, "u", true}),
	}
	batch = append(batch, batch...) // and every message twice
	applyOK(t, f.s, f.homeA, batch...)
	wantTables(t, dump(t, f.s), tables{
		Days:  []string{"child-a1 2025-12-09 total=300 recv=2025-12-10T11:00:00Z"},
		Hours: []string{"child-a1 2025-12-09 a h0 secs=30 recv=2025-12-10T11:00:00Z"},
		Locs:  []string{"child-a1 2025-12-10T08:00:00Z lat=3 lon=3 recv=2025-12-10T11:00:00Z"},
		Sites: []string{"child-a1 2025-12-10T08:00:00Z u accessed=false recv=2025-12-10T11:00:00Z"},
	})
}

func testReceivedAtPrecision(t *testing.T, f *fixture) {
	base := at(-time.Hour).Add(123456789 * time.Nanosecond)
	ts := at(-2 * time.Hour).Add(987654321 * time.Nanosecond)
	applyOK(t, f.s, f.homeA, locMsg(f.a1, ts, 1, 1, base))
	// 999 ns later is the same microsecond: not newer, the larger value wins the tie.
	applyOK(t, f.s, f.homeA, locMsg(f.a1, ts, 0, 0, base.Add(200*time.Nanosecond)))
	wantTables(t, dump(t, f.s), tables{Locs: []string{
		"child-a1 2025-12-10T10:00:00.987654Z lat=1 lon=1 recv=2025-12-10T11:00:00.123456Z",
	}})
	// A message without received_at was received now.
	m := locMsg(f.a2, ts, 1, 1, time.Time{})
	applyOK(t, f.s, f.homeA, m)
	got := dump(t, f.s, f.a2).Locs
	if len(got) != 1 || !strings.HasSuffix(got[0], "recv=2025-12-10T12:00:00Z") {
		t.Fatalf("zero received_at stored as %v", got)
	}
}

func testRetentionRejects(t *testing.T, f *fixture) {
	old := testNow.Add(-hearth.DefaultRetention - 48*time.Hour)
	res := apply(t, f.s, f.homeA,
		stMsg(f.a1, old.Format(hearth.DateLayout), 100, nil, at(0)),
		locMsg(f.a1, old, 1, 1, at(0)),
		siteMsg(f.a1, at(0), visit{at(-time.Hour), "fresh", true}, visit{old, "stale", true}),
		locMsg(f.a1, at(time.Hour), 1, 1, at(0)),
		locMsg(f.a1, at(-hearth.DefaultRetention+time.Hour), 1, 1, at(0)),
	)
	for i, code := range []string{hearth.CodeTooOld, hearth.CodeTooOld, hearth.CodeTooOld, hearth.CodeFuture} {
		if res[i].Status != StatusRejected || res[i].Code != code || res[i].Error == "" {
			t.Errorf("message %d: %+v, want rejected %s with a reason", i, res[i], code)
		}
	}
	if !strings.Contains(res[0].Error, "retention") {
		t.Errorf("reason %q does not name the retention window", res[0].Error)
	}
	if res[4].Status != StatusOK {
		t.Errorf("data inside the window: %+v", res[4])
	}
	got := dump(t, f.s)
	if len(got.Days)+len(got.Sites) != 0 || len(got.Locs) != 1 {
		t.Fatalf("rejected data was stored: %+v", got)
	}
}

func testPrune(t *testing.T, f *fixture) {
	ctx := context.Background()
	day := func(d time.Duration) string { return testNow.Add(d).Format(hearth.DateLayout) }
	const d = 24 * time.Hour
	applyOK(t, f.s, f.homeA,
		stMsg(f.a1, day(-200*d), 1, map[string]map[int]int64{"a": {1: 1}}, at(0)),
		stMsg(f.a1, day(-100*d), 2, map[string]map[int]int64{"a": {1: 2}}, at(0)),
		stMsg(f.a1, day(-99*d), 3, map[string]map[int]int64{"a": {1: 3}}, at(0)),
		locMsg(f.a1, at(-150*d), 1, 1, at(0)),
		locMsg(f.a1, at(-100*d).Add(-time.Microsecond), 1, 1, at(0)),
		locMsg(f.a1, at(-100*d), 1, 1, at(0)),
		siteMsg(f.a1, at(0), visit{at(-150 * d), "old", true}, visit{at(-10 * d), "new", true}),
	)
	// Cut at now-100d: Apply with a retention of 100 days would still take
	// the day before (a day of slack for the phone's local date).
	n, err := f.s.Prune(ctx, at(-100*d))
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("Prune removed %d rows, want 5 (1 day, 1 hour row, 2 locations, 1 visit)", n)
	}
	wantTables(t, dump(t, f.s), tables{
		Days: []string{
			"child-a1 2025-09-01 total=2 recv=2025-12-10T12:00:00Z",
			"child-a1 2025-09-02 total=3 recv=2025-12-10T12:00:00Z",
		},
		Hours: []string{
			"child-a1 2025-09-01 a h1 secs=2 recv=2025-12-10T12:00:00Z",
			"child-a1 2025-09-02 a h1 secs=3 recv=2025-12-10T12:00:00Z",
		},
		Locs:  []string{"child-a1 2025-09-01T12:00:00Z lat=1 lon=1 recv=2025-12-10T12:00:00Z"},
		Sites: []string{"child-a1 2025-11-30T12:00:00Z new accessed=true recv=2025-12-10T12:00:00Z"},
	})
	if n, err := f.s.Prune(ctx, at(-100*d)); err != nil || n != 0 {
		t.Fatalf("second Prune = %d, %v; want 0", n, err)
	}
}

// Ensure that pruneDay keeps every day Apply accepts.
func TestPruneDay_KeepsAcceptedDays(t *testing.T) {
	for _, now := range []time.Time{testNow, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 1, 23, 59, 59, 0, time.UTC)} {
		w := hearth.Window{Now: now, MaxAge: hearth.DefaultRetention}
		first := pruneDay(now.Add(-w.MaxAge))
		prev, _ := time.Parse(hearth.DateLayout, first)
		prev = prev.Add(-24 * time.Hour)
		day := func(d string) error {
			_, err := hearth.Check(hearth.KindScreenTime, mustJSON(map[string]any{"date": d, "total_screen_time": 1, "app_wise_data": map[string]any{}}), hearth.Rules{Mode: hearth.ModeStrict, Window: w})
			return err
		}
		if err := day(first); err != nil {
			t.Errorf("now %s: first kept day %s is refused by Apply: %v", now, first, err)
		}
		if err := day(prev.Format(hearth.DateLayout)); err == nil {
			t.Errorf("now %s: pruned day %s is still accepted by Apply", now, prev.Format(hearth.DateLayout))
		}
	}
}

func testTenancy(t *testing.T, f *fixture) {
	res := apply(t, f.s, f.homeA,
		locMsg(f.a1, at(-time.Hour), 1, 1, at(0)),
		locMsg(f.b1, at(-time.Hour), 2, 2, at(0)),
		stMsg(f.b1, "2025-12-09", 1, map[string]map[int]int64{"a": {1: 1}}, at(0)),
		siteMsg("no-such-child", at(0), visit{at(-time.Hour), "u", true}),
		locMsg("bad hash/..", at(-time.Hour), 2, 2, at(0)),
		locMsg(f.a2, at(-time.Hour), 3, 3, at(0)),
	)
	want := []Result{
		{Status: StatusOK},
		{Status: StatusRejected, Code: CodeForeignChild},
		{Status: StatusRejected, Code: CodeForeignChild},
		{Status: StatusRejected, Code: CodeUnknownChild},
		{Status: StatusRejected, Code: CodeUnknownChild},
		{Status: StatusOK},
	}
	for i := range want {
		if res[i].Status != want[i].Status || res[i].Code != want[i].Code || (res[i].Status == StatusRejected) != (res[i].Error != "") {
			t.Errorf("message %d: %+v, want %+v with a reason when rejected", i, res[i], want[i])
		}
	}
	if got := dump(t, f.s, f.b1); len(got.Locs)+len(got.Days)+len(got.Hours) != 0 {
		t.Fatalf("home A wrote for home B's child: %+v", got)
	}
	// Without a home (a phone straight to central) any known child may write.
	applyOK(t, f.s, "", locMsg(f.b1, at(-time.Hour), 2, 2, at(0)))
	if res := apply(t, f.s, "", locMsg("no-such-child", at(-time.Hour), 2, 2, at(0))); res[0].Code != CodeUnknownChild {
		t.Fatalf("unknown child without home: %+v", res[0])
	}
}

type hearthMsg = hearth.Message

func testInvalid(t *testing.T, f *fixture) {
	bad := func(kind hearth.Kind, data string) hearthMsg {
		return hearthMsg{ChildHash: f.a1, Kind: kind, ReceivedAt: at(0), Data: []byte(data)}
	}
	// A message holding only Data is checked in strict mode against its
	// received_at. A NUL, which PostgreSQL text cannot hold, never reaches
	// the database: Check refuses it in an app id and percent-encodes it
	// in a URL.
	res := apply(t, f.s, f.homeA,
		bad(hearth.KindLocation, `{"timestamp":"yesterday","latitude":1,"longitude":1}`),
		bad(hearth.KindLocation, `{"timestamp":"2025-12-10T10:00:00Z","latitude":91,"longitude":1}`),
		bad(hearth.KindScreenTime, `[]`),
		bad("heartbeat", `{}`),
		stMsg(f.a1, "2025-12-09", 1, map[string]map[int]int64{"a\x00b": {1: 1}}, at(0)),
		stMsg(f.a1, "2025-12-09", 1, map[string]map[int]int64{"a\x7fb": {1: 1}}, at(0)),
		bad(hearth.KindLocation, `{"timestamp":"2025-12-10 10:00:00","latitude":1,"longitude":1}`),
		bad(hearth.KindLocation, `{"timestamp":"2025-12-10T10:00:00Z","latitude":1,"longitude":1,"accuracy":5}`),
		bad(hearth.KindSiteAccess, `{"logs":[]}`),
		siteMsg(f.a1, at(0), visit{at(-time.Hour), "https://x\x00.example", true}),
		bad(hearth.KindLocation, `{"timestamp":"2025-12-10T10:00:00Z","latitude":1,"longitude":1}`),
	)
	codes := []string{hearth.CodeInvalid, hearth.CodeInvalid, hearth.CodeInvalid, hearth.CodeUnknownType,
		hearth.CodeInvalid, hearth.CodeInvalid, hearth.CodeInvalid, hearth.CodeInvalid, hearth.CodeInvalid}
	for i, c := range codes {
		if res[i].Status != StatusRejected || res[i].Code != c || res[i].Error == "" {
			t.Errorf("message %d: %+v, want rejected %s", i, res[i], c)
		}
	}
	for i := len(codes); i < len(res); i++ {
		if res[i].Status != StatusOK {
			t.Errorf("valid message %d after invalid ones: %+v", i, res[i])
		}
	}
	wantTables(t, dump(t, f.s), tables{
		Locs:  []string{"child-a1 2025-12-10T10:00:00Z lat=1 lon=1 recv=2025-12-10T12:00:00Z"},
		Sites: []string{"child-a1 2025-12-10T11:00:00Z https://x%00.example accessed=true recv=2025-12-10T12:00:00Z"},
	})
}

// A message checked by its caller carries its typed Payload, and the
// store writes that without checking Data again: central checks an edge's
// message against its own clock, then corrects received_at, which may move
// it before the device time. The same message holding only Data is checked
// against its received_at.
func testPayloadAsChecked(t *testing.T, f *fixture) {
	c, err := hearth.Check(hearth.KindLocation, []byte(`{"timestamp":"2025-12-10T11:30:00Z","latitude":1,"longitude":2}`),
		hearth.Rules{Mode: hearth.ModeStrict, Window: hearth.Window{Now: testNow, MaxAge: hearth.DefaultRetention, MaxFuture: hearth.DefaultMaxFuture}})
	if err != nil {
		t.Fatal(err)
	}
	recv := at(-2 * time.Hour)
	checked := hearthMsg{ChildHash: f.a1, Kind: c.Kind, ReceivedAt: recv, Via: hearth.ViaWS, Data: c.Data, Payload: c.Payload}
	dataOnly := checked
	dataOnly.Payload = hearth.Payload{}
	res := apply(t, f.s, f.homeA, checked, dataOnly)
	if res[0].Status != StatusOK {
		t.Errorf("checked message: %+v", res[0])
	}
	if res[1].Status != StatusRejected || res[1].Code != hearth.CodeFuture {
		t.Errorf("the same message with only Data: %+v, want rejected future", res[1])
	}
	wantTables(t, dump(t, f.s), tables{Locs: []string{"child-a1 2025-12-10T11:30:00Z lat=1 lon=2 recv=2025-12-10T10:00:00Z"}})
}

var urlSafe = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func testTokens(t *testing.T, f *fixture) {
	ctx := context.Background()
	if !urlSafe.MatchString(f.tokA) || f.tokA == f.tokB {
		t.Fatalf("tokens %q, %q: want distinct 43-character URL-safe strings", f.tokA, f.tokB)
	}
	h, err := f.s.HomeByToken(ctx, f.tokA)
	if err != nil || h.ID != f.homeA || h.Name != "home A" || h.Children != 2 {
		t.Fatalf("HomeByToken = %+v, %v", h, err)
	}
	for _, bad := range []string{"", f.tokA + "x", f.tokA[1:], hashToken(f.tokA)} {
		if _, err := f.s.HomeByToken(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("HomeByToken(%q) = %v, want ErrUnauthorized", bad, err)
		}
	}
	sum := sha256.Sum256([]byte(f.tokA))
	found := false
	homes := "homes"
	if isGuardian(f.s) {
		homes = "hearth_homes"
	}
	for _, row := range rawQuerier(t, f.s)(`SELECT * FROM ` + homes) {
		for _, v := range row {
			if strings.Contains(v, f.tokA) || strings.Contains(v, f.tokB) {
				t.Fatalf("raw token stored in homes: %v", row)
			}
			found = found || v == hex.EncodeToString(sum[:])
		}
	}
	if !found {
		t.Fatal("no SHA-256 of the token in homes")
	}
}

func testChildren(t *testing.T, f *fixture) {
	ctx := context.Background()
	gen, err := f.s.AddChild(ctx, f.homeB, "")
	if err != nil || !urlSafe.MatchString(gen) {
		t.Fatalf("AddChild generated %q, %v; want 43 URL-safe characters", gen, err)
	}
	gen2, _ := f.s.AddChild(ctx, f.homeB, "")
	if gen2 == gen {
		t.Fatal("two generated hashes are equal")
	}
	if _, err := f.s.AddChild(ctx, f.homeB, f.a1); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate hash: %v, want ErrExists", err)
	}
	if _, err := f.s.AddChild(ctx, "no-such-home", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown home: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"a/b", "a b", strings.Repeat("x", 129), "ü"} {
		if _, err := f.s.AddChild(ctx, f.homeB, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddChild(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	got, err := f.s.Children(ctx, f.homeB)
	want := []string{"child-b1", gen, gen2}
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Children(B) = %v, %v; want %v", got, err, want)
	}
	home, _, _ := f.s.AddHome(ctx, "empty")
	if got, err := f.s.Children(ctx, home); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Children(empty home) = %#v, %v; want empty", got, err)
	}
	if _, err := f.s.Children(ctx, "no-such-home"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Children(unknown) = %v, want ErrNotFound", err)
	}
	if h, ok, err := f.s.ChildHome(ctx, gen); h != f.homeB || !ok || err != nil {
		t.Errorf("ChildHome = %q, %v, %v", h, ok, err)
	}
	if _, ok, err := f.s.ChildHome(ctx, "nobody"); ok || err != nil {
		t.Errorf("ChildHome(unknown) = %v, %v", ok, err)
	}
	// A newly added child may write at once.
	applyOK(t, f.s, f.homeB, locMsg(gen, at(-time.Hour), 1, 1, at(0)))
}

func testHomes(t *testing.T, f *fixture) {
	ctx := context.Background()
	seen := testNow.Add(1234567 * time.Nanosecond)
	if err := f.s.RecordClockOffset(ctx, f.homeB, -90*time.Second, seen); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RecordClockOffset(ctx, "nope", 0, seen); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecordClockOffset(unknown) = %v, want ErrNotFound", err)
	}
	if _, _, err := f.s.AddHome(ctx, " "); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddHome(blank) = %v, want ErrInvalid", err)
	}
	homes, err := f.s.ListHomes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Home{
		{ID: f.homeA, Name: "home A", CreatedAt: testNow, Children: 2},
		{ID: f.homeB, Name: "home B", CreatedAt: testNow, Children: 1, ClockOffset: -90 * time.Second, LastSeen: seen.Truncate(time.Microsecond)},
	}
	slices.SortFunc(homes, func(a, b Home) int { return strings.Compare(a.Name, b.Name) })
	if fmt.Sprint(homes) != fmt.Sprint(want) {
		t.Fatalf("ListHomes =\n%v\nwant\n%v", homes, want)
	}
}

func testStats(t *testing.T, f *fixture) {
	applyOK(t, f.s, f.homeA, mixedBatch(f)...)
	got, err := f.s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"homes": 2, "children": 3, "screen_time": 2, "app_screen_time": 3, "locations": 2, "site_access": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Stats = %v, want %v", got, want)
	}
}

func testReadRanges(t *testing.T, f *fixture) {
	ctx := context.Background()
	t0 := at(-5 * time.Hour)
	var msgs []hearthMsg
	for i := range 5 {
		ts := t0.Add(time.Duration(i) * time.Hour)
		msgs = append(msgs,
			stMsg(f.a1, testNow.AddDate(0, 0, -i).Format(hearth.DateLayout), int64(i), map[string]map[int]int64{"z": {i: 1}, "a": {0: int64(i)}}, at(0)),
			locMsg(f.a1, ts, float64(i), -float64(i), at(0)),
			siteMsg(f.a1, at(0), visit{ts, "https://b", true}, visit{ts, "https://a", false}))
	}
	msgs = append(msgs, locMsg(f.a2, t0, 9, 9, at(0)))
	applyOK(t, f.s, f.homeA, msgs...)

	days, err := f.s.ScreenTime(ctx, f.a1, "2025-12-07", "2025-12-09")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range days {
		got = append(got, fmt.Sprintf("%s=%d %v %s", d.Date, d.TotalSeconds, d.Apps, fmtTime(d.ReceivedAt)))
	}
	want := []string{
		"2025-12-07=3 map[a:map[0:3] z:map[3:1]] 2025-12-10T12:00:00Z",
		"2025-12-08=2 map[a:map[0:2] z:map[2:1]] 2025-12-10T12:00:00Z",
		"2025-12-09=1 map[a:map[0:1] z:map[1:1]] 2025-12-10T12:00:00Z",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ScreenTime =\n%v\nwant\n%v", got, want)
	}
	if _, err := f.s.ScreenTime(ctx, f.a1, "2025-12-7", "2025-12-09"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad date: %v, want ErrInvalid", err)
	}
	if d, err := f.s.ScreenTime(ctx, "nobody", "2025-12-01", "2025-12-09"); err != nil || d == nil || len(d) != 0 {
		t.Errorf("unknown child: %#v, %v; want empty", d, err)
	}

	// Both ends inclusive; a bound between microseconds is rounded inward.
	locs, err := f.s.Locations(ctx, f.a1, t0.Add(time.Hour-time.Nanosecond), t0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"1 -1 2025-12-10T08:00:00Z", "2 -2 2025-12-10T09:00:00Z", "3 -3 2025-12-10T10:00:00Z"}
	got = nil
	for _, l := range locs {
		got = append(got, fmt.Sprintf("%v %v %s", l.Latitude, l.Longitude, fmtTime(l.Timestamp)))
		if l.Timestamp.Location() != time.UTC {
			t.Errorf("timestamp %v not in UTC", l.Timestamp)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Locations = %v, want %v", got, want)
	}
	if locs, _ := f.s.Locations(ctx, f.a1, t0.Add(time.Hour+time.Nanosecond), t0.Add(time.Hour+time.Nanosecond)); len(locs) != 0 {
		t.Errorf("Locations just after a fix: %v", locs)
	}

	visits, err := f.s.SiteAccess(ctx, f.a1, t0.Add(4*time.Hour), t0.Add(10*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, v := range visits {
		got = append(got, fmt.Sprintf("%s %s %v", fmtTime(v.Timestamp), v.URL, v.Accessed))
	}
	want = []string{"2025-12-10T11:00:00Z https://a false", "2025-12-10T11:00:00Z https://b true"}
	if !slices.Equal(got, want) {
		t.Errorf("SiteAccess = %v, want %v", got, want)
	}
	if v, err := f.s.SiteAccess(ctx, "nobody", t0, testNow); err != nil || v == nil || len(v) != 0 {
		t.Errorf("unknown child: %#v, %v; want empty", v, err)
	}
}

func testFloats(t *testing.T, f *fixture) {
	ctx := context.Background()
	vals := []float64{0, -0.0000001, 40.712812345678901, -74.00601, 89.99999999999999, -89.99999999999997,
		math.Nextafter(12.3, 13), 1e-300, 5e-324, 0.1 + 0.2, 33.333333333333336}
	var msgs []hearthMsg
	for i, v := range vals {
		msgs = append(msgs, locMsg(f.a1, at(-time.Hour).Add(time.Duration(i)*time.Second), v, -v*1.7, at(0)))
	}
	applyOK(t, f.s, f.homeA, msgs...)
	locs, err := f.s.Locations(ctx, f.a1, at(-2*time.Hour), testNow)
	if err != nil || len(locs) != len(vals) {
		t.Fatalf("Locations = %d, %v", len(locs), err)
	}
	for i, l := range locs {
		if math.Float64bits(l.Latitude) != math.Float64bits(vals[i]) && !(l.Latitude == 0 && vals[i] == 0) ||
			l.Longitude != -vals[i]*1.7 {
			t.Errorf("fix %d: %v,%v; want %v,%v", i, l.Latitude, l.Longitude, vals[i], -vals[i]*1.7)
		}
	}
	// The tie-break compares stored floats with incoming ones: a replay of
	// the same fix must be a no-op, not an endless flip.
	applyOK(t, f.s, f.homeA, msgs...)
}

func testConcurrent(t *testing.T, f *fixture) {
	// Overlapping keys in opposite orders from several writers at once: no
	// deadlock, no busy error, and the newest row per key wins.
	const writers, rounds = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var msgs []hearthMsg
				for k := range 20 {
					if w%2 == 1 {
						k = 19 - k
					}
					recv := at(-time.Hour).Add(time.Duration(w*rounds+r) * time.Second)
					ts := at(-2 * time.Hour).Add(time.Duration(k) * time.Minute)
					msgs = append(msgs, locMsg(f.a1, ts, float64(w), float64(r), recv),
						stMsg(f.a2, "2025-12-09", int64(w*100+r), map[string]map[int]int64{"a": {k % 24: int64(w)}}, recv))
				}
				if _, err := f.s.Apply(context.Background(), f.homeA, msgs); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := dump(t, f.s)
	last := fmt.Sprintf("lat=%d lon=%d", writers-1, rounds-1)
	if len(got.Locs) != 20 || len(got.Days) != 1 || !strings.Contains(got.Days[0], fmt.Sprintf("total=%d", (writers-1)*100+rounds-1)) {
		t.Fatalf("after concurrent batches: %+v", got)
	}
	for _, l := range got.Locs {
		if !strings.Contains(l, last) {
			t.Fatalf("location %s: want the newest (%s)", l, last)
		}
	}
}

func testClosed(t *testing.T, f *fixture) {
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := f.s.Apply(context.Background(), f.homeA, mixedBatch(f))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, hearth.ErrUnavailable) {
		t.Fatalf("Apply on a closed store: %v, want ErrUnavailable", err)
	}
	if err := f.s.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping on a closed store: %v, want ErrUnavailable", err)
	}
}

// engineOf returns the engine of a fixture's store.
func engineOf(f *fixture) engine {
	switch f.s.(type) {
	case *Postgres:
		return engines[1]
	case *GuardianSQLite:
		return gaEngines[0]
	case *GuardianPostgres:
		return gaEngines[1]
	}
	return engines[0]
}

func testStrings(t *testing.T, f *fixture) {
	ctx := context.Background()
	// Quotes, backslashes, markup, SQL and Unicode round-trip unchanged;
	// control characters in a URL come back percent-encoded (Check encodes
	// them), and an app id holding one is refused.
	odd := []string{`https://x.example/"quoted"`, `C:\path\\`, "ünïcødé ✓ 😀", "<script>&amp;</script>", "'; DROP TABLE homes; --", "\u2028 and \u0085"}
	urls := map[string]string{"tab\there\nnewline\x01\x1f\x7f": "tab%09here%0Anewline%01%1F%7F"}
	var visits []visit
	var wantURLs []string
	apps := map[string]map[int]int64{}
	for i, u := range odd {
		visits = append(visits, visit{at(-time.Hour).Add(time.Duration(i) * time.Second), u, true})
		wantURLs = append(wantURLs, u)
		apps[u] = map[int]int64{i: int64(i)}
	}
	for u, want := range urls {
		visits = append(visits, visit{at(-time.Hour).Add(time.Duration(len(visits)) * time.Second), u, true})
		wantURLs = append(wantURLs, want)
	}
	applyOK(t, f.s, f.homeA, siteMsg(f.a1, at(0), visits...), stMsg(f.a1, "2025-12-09", 1, apps, at(0)))
	for u := range urls {
		res := apply(t, f.s, f.homeA, stMsg(f.a1, "2025-12-09", 1, map[string]map[int]int64{u: {1: 1}}, at(0)))
		if res[0].Status != StatusRejected || res[0].Code != hearth.CodeInvalid {
			t.Errorf("app id %q: %+v, want rejected invalid", u, res[0])
		}
	}
	got, err := f.s.SiteAccess(ctx, f.a1, at(-2*time.Hour), testNow)
	if err != nil || len(got) != len(wantURLs) {
		t.Fatalf("SiteAccess = %v, %v", got, err)
	}
	for i, v := range got {
		if v.URL != wantURLs[i] {
			t.Errorf("url %d = %q, want %q", i, v.URL, wantURLs[i])
		}
	}
	days, err := f.s.ScreenTime(ctx, f.a1, "2025-12-09", "2025-12-09")
	if err != nil || len(days) != 1 || fmt.Sprint(days[0].Apps) != fmt.Sprint(apps) {
		t.Fatalf("ScreenTime = %v, %v; want apps %v", days, err, apps)
	}
}
