package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

// testNow is the clock of every test store.
var testNow = time.Date(2025, 12, 10, 12, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Now: func() time.Time { return testNow }}
}

// engine is one SQL engine the suite runs against.
type engine struct {
	name    string
	dsn     func(t testing.TB) string // a fresh, empty database
	require func(t testing.TB)        // skips t when the engine is missing
	schema  string                    // Options.Schema; "" is hearth's
}

var engines = []engine{
	{"SQLite", func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "central.db") }, func(testing.TB) {}, ""},
	{"Postgres", pgtest.DSN, pgtest.Require, ""},
}

// forEachEngine runs fn as a subtest per engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			e.require(t)
			fn(t, e)
		})
	}
}

// open opens a store on dsn and closes it when the test ends.
func open(t testing.TB, dsn string, opts Options) Store {
	t.Helper()
	s, err := OpenWith(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture is a store with two homes: A with children a1 and a2, B with b1.
type fixture struct {
	s          Store
	homeA      string
	homeB      string
	tokA, tokB string
	a1, a2, b1 string
}

func newFixture(t testing.TB, e engine) *fixture {
	t.Helper()
	return fixtureOn(t, openEngine(t, e))
}

// fixtureOn makes the fixture's homes and children in s.
func fixtureOn(t testing.TB, s Store) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{s: s}
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.homeA, f.tokA, err = f.s.AddHome(ctx, "home A")
	must(err)
	f.homeB, f.tokB, err = f.s.AddHome(ctx, "home B")
	must(err)
	f.a1, err = f.s.AddChild(ctx, f.homeA, "child-a1")
	must(err)
	f.a2, err = f.s.AddChild(ctx, f.homeA, "child-a2")
	must(err)
	f.b1, err = f.s.AddChild(ctx, f.homeB, "child-b1")
	must(err)
	return f
}

// at returns testNow moved by d, for received_at values.
func at(d time.Duration) time.Time { return testNow.Add(d) }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func stMsg(child, date string, total int64, apps map[string]map[int]int64, recv time.Time) hearth.Message {
	wire := map[string]map[string]int64{}
	for app, hours := range apps {
		wire[app] = map[string]int64{}
		for h, s := range hours {
			wire[app][strconv.Itoa(h)] = s
		}
	}
	return hearth.Message{ChildHash: child, Kind: hearth.KindScreenTime, ReceivedAt: recv, Via: hearth.ViaWS,
		Data: mustJSON(map[string]any{"date": date, "total_screen_time": total, "app_wise_data": wire})}
}

func locMsg(child string, ts time.Time, lat, lon float64, recv time.Time) hearth.Message {
	return hearth.Message{ChildHash: child, Kind: hearth.KindLocation, ReceivedAt: recv, Via: hearth.ViaWS,
		Data: mustJSON(map[string]any{"timestamp": ts.Format(time.RFC3339Nano), "latitude": lat, "longitude": lon})}
}

type visit struct {
	ts       time.Time
	url      string
	accessed bool
}

func siteMsg(child string, recv time.Time, visits ...visit) hearth.Message {
	logs := make([]map[string]any, 0, len(visits))
	for _, v := range visits {
		logs = append(logs, map[string]any{"timestamp": v.ts.Format(time.RFC3339Nano), "url": v.url, "accessed": v.accessed})
	}
	return hearth.Message{ChildHash: child, Kind: hearth.KindSiteAccess, ReceivedAt: recv, Via: hearth.ViaHTTP,
		Data: mustJSON(map[string]any{"logs": logs})}
}

// apply applies msgs and fails the test on an error.
func apply(t testing.TB, s Store, home string, msgs ...hearth.Message) []Result {
	t.Helper()
	res, err := s.Apply(context.Background(), home, msgs)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("apply: %d results for %d messages", len(res), len(msgs))
	}
	return res
}

// applyOK applies msgs and fails the test unless every one is ok.
func applyOK(t testing.TB, s Store, home string, msgs ...hearth.Message) {
	t.Helper()
	for i, r := range apply(t, s, home, msgs...) {
		if r.Status != StatusOK {
			t.Fatalf("message %d: %+v", i, r)
		}
	}
}

// tables is the content of the data tables as text lines, one per row,
// sorted, in one format for both engines.
type tables struct {
	Days, Hours, Locs, Sites []string
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (r dayRow) String() string {
	return fmt.Sprintf("%s %s total=%d recv=%s", r.child, r.date, r.total, fmtTime(r.recv))
}

func (r hourRow) String() string {
	return fmt.Sprintf("%s %s %s h%d secs=%d recv=%s", r.child, r.date, r.app, r.hour, r.secs, fmtTime(r.recv))
}

func (r locRow) String() string {
	return fmt.Sprintf("%s %s lat=%s lon=%s recv=%s", r.child, fmtTime(r.ts), fmtFloat(r.lat), fmtFloat(r.lon), fmtTime(r.recv))
}

func (r siteRow) String() string {
	return fmt.Sprintf("%s %s %s accessed=%v recv=%s", r.child, fmtTime(r.ts), r.url, r.accessed, fmtTime(r.recv))
}

func (tb *tables) sort() {
	for _, s := range [][]string{tb.Days, tb.Hours, tb.Locs, tb.Sites} {
		slices.Sort(s)
	}
}

// dump reads the data tables of the children given (all when none).
func dump(t testing.TB, s Store, children ...string) tables {
	t.Helper()
	keep := func(c string) bool { return len(children) == 0 || slices.Contains(children, c) }
	var out tables
	q := rawQuerier(t, s)
	dq := dumpQueries
	if isGuardian(s) {
		dq = gaDumpQueries
	}
	for _, r := range q(dq[0]) {
		if keep(r[0]) {
			out.Days = append(out.Days, dayRow{dayKey: dayKey{r[0], r[1][:10]}, total: atoi(r[2]), recv: parseAny(t, r[3])}.String())
		}
	}
	for _, r := range q(dq[1]) {
		if keep(r[0]) {
			out.Hours = append(out.Hours, hourRow{hourKey{r[0], r[1][:10], r[2], int(atoi(r[3]))}, atoi(r[4]), parseAny(t, r[5])}.String())
		}
	}
	for _, r := range q(dq[2]) {
		if keep(r[0]) {
			out.Locs = append(out.Locs, locRow{tsKey{r[0], parseAny(t, r[1])}, atof(r[2]), atof(r[3]), parseAny(t, r[4])}.String())
		}
	}
	for _, r := range q(dq[3]) {
		if keep(r[0]) {
			acc := r[3] == "1" || r[3] == "true"
			out.Sites = append(out.Sites, siteRow{siteKey{tsKey{r[0], parseAny(t, r[1])}, r[2]}, acc, parseAny(t, r[4])}.String())
		}
	}
	out.sort()
	return out
}

// rawQuerier returns a function running a query on the store's database
// and returning every value as text (times as RFC 3339 in UTC, so a
// PostgreSQL date starts with YYYY-MM-DD like SQLite's; floats in the
// shortest exact form).
func rawQuerier(t testing.TB, s Store) func(sql string, args ...any) [][]string {
	ctx := context.Background()
	return func(sql string, args ...any) [][]string {
		t.Helper()
		var out [][]string
		switch st := s.(type) {
		case *GuardianSQLite:
			s = st.db
		case *GuardianPostgres:
			s = st.db
		}
		switch s := s.(type) {
		case *SQLite:
			rows, err := s.r.QueryContext(ctx, sql, args...)
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				out = append(out, textRow(vals))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		case *Postgres:
			err := s.pool.with(ctx, func(c *pgx.Conn) error {
				rows, err := c.Query(ctx, sql, args...)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					vals, err := rows.Values()
					if err != nil {
						return err
					}
					out = append(out, textRow(vals))
				}
				return rows.Err()
			})
			if err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		default:
			t.Fatalf("unknown store %T", s)
		}
		return out
	}
}

// rawExec runs a statement on the store's database.
func rawExec(t testing.TB, s Store, sql string) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch st := s.(type) {
	case *GuardianSQLite:
		s = st.db
	case *GuardianPostgres:
		s = st.db
	}
	switch s := s.(type) {
	case *SQLite:
		_, err = s.w.ExecContext(ctx, sql)
	case *Postgres:
		err = s.pool.with(ctx, func(c *pgx.Conn) error { _, err := c.Exec(ctx, sql); return err })
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func textRow(vals []any) []string {
	row := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
			row[i] = "NULL"
		case time.Time:
			row[i] = fmtTime(v)
		case float64:
			row[i] = fmtFloat(v)
		case []byte:
			row[i] = string(v)
		default:
			row[i] = fmt.Sprint(v)
		}
	}
	return row
}

func atoi(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

func atof(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f
}

func parseAny(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		v, err = parseDjango(s)
	}
	if err != nil {
		t.Fatalf("parse time %q: %v", s, err)
	}
	return v
}

// diff describes how got differs from want, "" when equal.
func (tb tables) diff(want tables) string {
	var out string
	for _, c := range []struct {
		name      string
		got, want []string
	}{{"screen_time", tb.Days, want.Days}, {"app_screen_time", tb.Hours, want.Hours},
		{"locations", tb.Locs, want.Locs}, {"site_access", tb.Sites, want.Sites}} {
		for _, g := range c.got {
			if !slices.Contains(c.want, g) {
				out += fmt.Sprintf("  %s: unexpected %s\n", c.name, g)
			}
		}
		for _, w := range c.want {
			if !slices.Contains(c.got, w) {
				out += fmt.Sprintf("  %s: missing    %s\n", c.name, w)
			}
		}
		if out == "" && len(c.got) != len(c.want) {
			out += fmt.Sprintf("  %s: %d rows, want %d\n", c.name, len(c.got), len(c.want))
		}
	}
	return out
}
