package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The dashboard's reads, as Django's ORM issues them for its views
// (backend/views.py upstream): a child's screen time of the last 30 days
// newest first, each day's per-app hours joined with App, and its
// locations and visits newest first.
const (
	dashDays  = `SELECT id, date, total_screen_time, CAST(app_wise_data AS TEXT) FROM backend_screentime WHERE child_id = $1 AND date >= $2 ORDER BY date DESC`
	dashHours = `SELECT a.domain, a.app_name, x.hour, x.seconds FROM backend_appscreentime AS x INNER JOIN backend_app AS a ON x.app_id = a.id
		WHERE x.screen_time_id = $1 ORDER BY a.domain, x.hour`
	dashLocs  = `SELECT "timestamp", latitude, longitude FROM backend_locationhistory WHERE child_id = $1 ORDER BY "timestamp" DESC`
	dashSites = `SELECT "timestamp", url, accessed FROM backend_siteaccesslog WHERE child_id = $1 ORDER BY "timestamp" DESC`
)

// dashboardView is what the dashboard shows of one child.
type dashboardView struct {
	Days  []string // date total app_wise_data(decoded) | app app_name hour=seconds ...
	Locs  []string
	Sites []string
}

// readDashboard runs the dashboard's queries for child.
func readDashboard(t *testing.T, s Store, child, since string) dashboardView {
	t.Helper()
	q := rawQuerier(t, s)
	id := q(`SELECT id FROM accounts_child WHERE child_hash = $1`, child)[0][0]
	var v dashboardView
	for _, d := range q(dashDays, atoi(id), since) {
		var apps map[string]map[string]int64
		if err := json.Unmarshal([]byte(d[3]), &apps); err != nil {
			t.Fatalf("app_wise_data %q: %v", d[3], err)
		}
		line := fmt.Sprintf("%s total=%s json=%v |", d[1][:10], d[2], apps)
		for _, h := range q(dashHours, atoi(d[0])) {
			line += fmt.Sprintf(" %s(%s) h%s=%s", h[0], h[1], h[2], h[3])
		}
		v.Days = append(v.Days, line)
	}
	for _, l := range q(dashLocs, atoi(id)) {
		v.Locs = append(v.Locs, strings.Join(l, " "))
	}
	for _, s := range q(dashSites, atoi(id)) {
		s[2] = map[string]string{"1": "true", "0": "false"}[s[2]] + map[string]string{"true": "true", "false": "false"}[s[2]]
		v.Sites = append(v.Sites, strings.Join(s, " "))
	}
	return v
}

// Ensure that the dashboard, reading its own tables with its own queries,
// shows what the phones sent: the newest value per day, per hour, per fix
// and per visit, once each, whichever way it came (home edge or straight
// to central) and in whatever order.
func TestGuardianAI_DashboardReadsWhatWasSent(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		f := gaFixture(t, e)
		rawExec(t, f.s, `INSERT INTO backend_app (domain, app_name, icon_url, blocked_count) VALUES ('com.existing', 'Existing Name', 'https://icons.example/e.png', 3)`)
		t1, t2 := at(-5*time.Hour), at(-4*time.Hour)
		// Via the home's edge, then straight from the phone (newer), then a
		// late backlog from the edge (older than both), and resends.
		applyOK(t, f.s, f.homeA,
			stMsg(f.a1, "2025-12-09", 3600, map[string]map[int]int64{"com.example.app1": {9: 1800, 10: 1800}, "com.existing": {8: 60}}, at(-2*time.Hour)),
			locMsg(f.a1, t1, 51.5, -0.12, at(-2*time.Hour)),
			siteMsg(f.a1, at(-2*time.Hour), visit{t1, "https://a.example/", true}))
		applyOK(t, f.s, "",
			stMsg(f.a1, "2025-12-09", 4000, map[string]map[int]int64{"com.example.app1": {10: 2200}, "app2x": {11: 0}}, at(-time.Hour)),
			stMsg(f.a1, "2025-11-01", 60, map[string]map[int]int64{"my_app": {1: 60}}, at(-time.Hour)),
			stMsg(f.a1, "2025-12-08", 120, map[string]map[int]int64{"my_app": {23: 120}, "org.no.hours": {}}, at(-time.Hour)),
			locMsg(f.a1, t2, 51.6, -0.13, at(-time.Hour)),
			siteMsg(f.a1, at(-time.Hour), visit{t2, "https://b.example/", false}))
		applyOK(t, f.s, f.homeA,
			stMsg(f.a1, "2025-12-09", 100, map[string]map[int]int64{"com.example.app1": {9: 1, 10: 1}}, at(-3*time.Hour)),
			locMsg(f.a1, t1, 51.5, -0.12, at(-2*time.Hour)),
			locMsg(f.a1, t2, 0, 0, at(-3*time.Hour)),
			siteMsg(f.a1, at(-2*time.Hour), visit{t1, "https://a.example/", true}))
		got := readDashboard(t, f.s, f.a1, "2025-11-10")
		want := dashboardView{
			Days: []string{
				"2025-12-09 total=4000 json=map[app2x:map[11:0] com.example.app1:map[10:2200]] | app2x(App2X) h11=0 com.example.app1(App1) h9=1800 com.example.app1(App1) h10=2200 com.existing(Existing Name) h8=60",
				"2025-12-08 total=120 json=map[my_app:map[23:120] org.no.hours:map[]] | my_app(My_App) h23=120",
			},
			Locs:  []string{"2025-12-10T08:00:00Z 51.6 -0.13", "2025-12-10T07:00:00Z 51.5 -0.12"},
			Sites: []string{"2025-12-10T08:00:00Z https://b.example/ false", "2025-12-10T07:00:00Z https://a.example/ true"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the dashboard shows\n%s\nwant\n%s", strings.Join(slices.Concat(got.Days, got.Locs, got.Sites), "\n"),
				strings.Join(slices.Concat(want.Days, want.Locs, want.Sites), "\n"))
		}
		// Apps hearth created are named as the seed named them, without an
		// icon; the dashboard's own row is left alone.
		apps := rawQuerier(t, f.s)(`SELECT domain, app_name, icon_url, blocked_count FROM backend_app ORDER BY domain`)
		wantApps := [][]string{{"app2x", "App2X", "", "0"}, {"com.example.app1", "App1", "", "0"},
			{"com.existing", "Existing Name", "https://icons.example/e.png", "3"}, {"my_app", "My_App", "", "0"}, {"org.no.hours", "Hours", "", "0"}}
		if !reflect.DeepEqual(apps, wantApps) {
			t.Fatalf("backend_app = %v, want %v", apps, wantApps)
		}
	})
}

// djangoText matches a DateTimeField as Django's SQLite backend writes it.
var djangoText = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`)

// Ensure that created and updated are set as Django's auto fields would
// (created at the insert, updated at every write that changes the row,
// not by a write that loses), and that SQLite holds Django's text form.
func TestGuardianAI_AutoFieldsAndDatetimeFormat(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		now := testNow.Add(123456 * time.Microsecond)
		opts := testOptions()
		opts.Schema, opts.Now = SchemaGuardianAI, func() time.Time { return now }
		s := open(t, e.dsn(t), opts)
		created := now
		applyOK(t, s, "", stMsg("child-a1", "2025-12-09", 10, map[string]map[int]int64{"a": {1: 10}}, at(-time.Hour)),
			locMsg("child-a1", at(-2*time.Hour), 1, 2, at(-time.Hour)))
		now = now.Add(time.Minute)
		applyOK(t, s, "", stMsg("child-a1", "2025-12-09", 20, map[string]map[int]int64{"a": {1: 20}}, at(-30*time.Minute)))
		updated := now
		now = now.Add(time.Minute)
		applyOK(t, s, "", stMsg("child-a1", "2025-12-09", 5, map[string]map[int]int64{"a": {1: 5}}, at(-50*time.Minute)))
		q := rawQuerier(t, s)
		for _, table := range []string{"backend_screentime", "backend_appscreentime"} {
			r := q(`SELECT created, updated FROM ` + table)
			if len(r) != 1 || r[0][0] != fmtTime(created) || r[0][1] != fmtTime(updated) {
				t.Errorf("%s created, updated = %v, want %s, %s", table, r, fmtTime(created), fmtTime(updated))
			}
		}
		if _, ok := s.(*GuardianSQLite); !ok {
			return
		}
		for _, r := range q(`SELECT created || '', updated || '' FROM backend_screentime UNION ALL SELECT created || '', updated || '' FROM backend_appscreentime
			UNION ALL SELECT "timestamp" || '', created || '' FROM backend_locationhistory`) {
			for _, v := range r {
				if !djangoText.MatchString(v) {
					t.Errorf("datetime stored as %q, not as Django writes it", v)
				}
			}
		}
		if r := q(`SELECT date || '' FROM backend_screentime`); r[0][0] != "2025-12-09" {
			t.Errorf("date stored as %q", r[0][0])
		}
	})
}

// Ensure that a resent fix or visit is not a second row and that a late
// backlog never overwrites fresher data, in the Django tables themselves.
func TestGuardianAI_ResendAndLateBacklog(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		f := gaFixture(t, e)
		ts := at(-3 * time.Hour)
		fresh := []hearthMsg{
			locMsg(f.a1, ts, 10, 20, at(-time.Hour)),
			siteMsg(f.a1, at(-time.Hour), visit{ts, "https://x.example/", true}),
			stMsg(f.a1, "2025-12-10", 600, map[string]map[int]int64{"a.b": {8: 600}}, at(-time.Hour)),
		}
		for range 3 {
			applyOK(t, f.s, "", fresh...)
			applyOK(t, f.s, f.homeA, fresh...)
		}
		applyOK(t, f.s, f.homeA, locMsg(f.a1, ts, 0, 0, at(-2*time.Hour)),
			siteMsg(f.a1, at(-2*time.Hour), visit{ts, "https://x.example/", false}),
			stMsg(f.a1, "2025-12-10", 1, map[string]map[int]int64{"a.b": {8: 1}}, at(-2*time.Hour)))
		q := rawQuerier(t, f.s)
		for table, want := range map[string]string{
			"backend_locationhistory": "1", "backend_siteaccesslog": "1", "backend_screentime": "1", "backend_appscreentime": "1", "backend_app": "1",
		} {
			if n := q(`SELECT count(*) FROM ` + table)[0][0]; n != want {
				t.Errorf("%s has %s rows, want %s", table, n, want)
			}
		}
		v := readDashboard(t, f.s, f.a1, "2025-12-01")
		if v.Locs[0] != fmtTime(ts)+" 10 20" || !strings.HasSuffix(v.Sites[0], " true") || !strings.Contains(v.Days[0], "total=600") {
			t.Fatalf("the late backlog overwrote fresher data: %+v", v)
		}
	})
}

// Ensure that migrate on a database the seed has written keys hearth to
// the lowest id of each duplicate it left, reports them, and takes a seed
// row's updated (or created) time as its received time for newer-wins.
func TestGuardianAI_MigrateExistingDuplicates(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		dsn := e.dsn(t)
		pg := strings.HasPrefix(dsn, "postgres")
		tz := func(s string) string { // a datetime literal as Django writes it
			if pg {
				return "'" + s + "+00'"
			}
			return "'" + s + "'"
		}
		raw := openRaw(t, dsn, pg)
		// The seed's rows: child 1 is child-a1. A location and a visit
		// stored twice (resends), a day and an hour updated at 10:00.
		raw(`INSERT INTO backend_app (id, domain, app_name, icon_url, blocked_count) VALUES (1, 'com.seed', 'Seed', 'https://i.example/s.png', 0)`)
		raw(`INSERT INTO backend_screentime (id, date, total_screen_time, app_wise_data, created, updated, child_id)
			VALUES (1, '2025-12-09', 500, '{"com.seed": {"9": 500}}', ` + tz("2025-12-09 20:00:00") + `, ` + tz("2025-12-10 10:00:00") + `, 1)`)
		raw(`INSERT INTO backend_appscreentime (id, hour, seconds, created, updated, app_id, screen_time_id)
			VALUES (1, 9, 500, ` + tz("2025-12-09 20:00:00") + `, ` + tz("2025-12-10 10:00:00") + `, 1, 1)`)
		for id := 1; id <= 3; id++ {
			raw(fmt.Sprintf(`INSERT INTO backend_locationhistory (id, "timestamp", latitude, longitude, created, child_id)
				VALUES (%d, %s, %d, 2, %s, 1)`, id, tz("2025-12-10 08:00:00"), id, tz("2025-12-10 10:00:00")))
		}
		for id := 1; id <= 2; id++ {
			raw(fmt.Sprintf(`INSERT INTO backend_siteaccesslog (id, "timestamp", url, accessed, created, child_id)
				VALUES (%d, %s, 'https://s.example/', true, %s, 1)`, id, tz("2025-12-10 08:00:00"), tz("2025-12-10 10:00:00")))
		}
		if pg {
			raw(`SELECT setval('backend_locationhistory_id_seq', 3), setval('backend_siteaccesslog_id_seq', 2),
				setval('backend_screentime_id_seq', 1), setval('backend_appscreentime_id_seq', 1), setval('backend_app_id_seq', 1)`)
		}
		opts := testOptions()
		opts.Schema = SchemaGuardianAI
		s := open(t, dsn, opts)
		report := strings.Join(s.(interface{ MigrationReport() []string }).MigrationReport(), "\n")
		for _, w := range []string{"backend_locationhistory: 2 duplicate rows", "backend_siteaccesslog: 1 duplicate rows"} {
			if !strings.Contains(report, w) {
				t.Errorf("report %q does not say %q", report, w)
			}
		}
		ts := time.Date(2025, 12, 10, 8, 0, 0, 0, time.UTC)
		// Older than the seed's updated/created (10:00): nothing changes.
		applyOK(t, s, "", stMsg("child-a1", "2025-12-09", 1, map[string]map[int]int64{"com.seed": {9: 1}}, at(-2*time.Hour-time.Minute)),
			locMsg("child-a1", ts, 9, 9, at(-2*time.Hour-time.Minute)))
		// Newer: the lowest id of the key takes it; no new row.
		applyOK(t, s, "", siteMsg("child-a1", at(-time.Hour), visit{ts, "https://s.example/", false}))
		q := rawQuerier(t, s)
		for _, c := range []struct{ sql, want string }{
			{`SELECT total_screen_time FROM backend_screentime`, "500"},
			{`SELECT seconds FROM backend_appscreentime`, "500"},
			{`SELECT count(*) FROM backend_locationhistory`, "3"},
			{`SELECT latitude FROM backend_locationhistory WHERE id = 1`, "1"},
			{`SELECT count(*) FROM backend_siteaccesslog`, "2"},
			{`SELECT CASE WHEN accessed THEN 'yes' ELSE 'no' END FROM backend_siteaccesslog ORDER BY id`, "no"},
		} {
			if got := q(c.sql)[0][0]; got != c.want {
				t.Errorf("%s = %s, want %s", c.sql, got, c.want)
			}
		}
		if got := q(`SELECT CASE WHEN accessed THEN 'yes' ELSE 'no' END FROM backend_siteaccesslog WHERE id = 2`)[0][0]; got != "yes" {
			t.Errorf("the duplicate with the higher id changed: %s", got)
		}
		// Reopening reports nothing new.
		s.Close()
		if r := open(t, dsn, opts).(interface{ MigrationReport() []string }).MigrationReport(); len(r) != 0 {
			t.Errorf("second open reports %v", r)
		}
	})
}

// Ensure that a fix or visit whose row the dashboard deleted is written
// again when the phone resends it, once.
func TestGuardianAI_RowDeletedByDashboard(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		f := gaFixture(t, e)
		ts := at(-3 * time.Hour)
		msgs := []hearthMsg{locMsg(f.a1, ts, 1, 2, at(-time.Hour)), siteMsg(f.a1, at(-time.Hour), visit{ts, "https://x.example/", true})}
		applyOK(t, f.s, "", msgs...)
		rawExec(t, f.s, `DELETE FROM backend_locationhistory`)
		rawExec(t, f.s, `DELETE FROM backend_siteaccesslog`)
		applyOK(t, f.s, "", msgs...)
		applyOK(t, f.s, "", msgs...)
		q := rawQuerier(t, f.s)
		for _, table := range []string{"backend_locationhistory", "backend_siteaccesslog"} {
			if n := q(`SELECT count(*) FROM ` + table)[0][0]; n != "1" {
				t.Errorf("%s has %s rows, want 1", table, n)
			}
		}
	})
}

// Ensure that rows the seed writes beside hearth during the cutover (no
// version of hearth's) take their updated time as received time.
func TestGuardianAI_SeedRowsDuringCutover(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		f := gaFixture(t, e)
		tz := "'2025-12-10 10:00:00'"
		if _, ok := f.s.(*GuardianPostgres); ok {
			tz = "'2025-12-10 10:00:00+00'"
		}
		rawExec(t, f.s, `INSERT INTO backend_app (domain, app_name, icon_url, blocked_count) VALUES ('com.seed', 'Seed', '', 0)`)
		rawExec(t, f.s, `INSERT INTO backend_screentime (date, total_screen_time, app_wise_data, created, updated, child_id)
			SELECT '2025-12-09', 500, '{}', `+tz+`, `+tz+`, id FROM accounts_child WHERE child_hash = 'child-a1'`)
		rawExec(t, f.s, `INSERT INTO backend_appscreentime (hour, seconds, created, updated, app_id, screen_time_id)
			SELECT 9, 500, `+tz+`, `+tz+`, (SELECT id FROM backend_app), id FROM backend_screentime`)
		older := at(-2*time.Hour - time.Minute) // 09:59
		applyOK(t, f.s, "", stMsg(f.a1, "2025-12-09", 1, map[string]map[int]int64{"com.seed": {9: 1}}, older))
		q := rawQuerier(t, f.s)
		if got := q(`SELECT total_screen_time FROM backend_screentime`)[0][0] + " " + q(`SELECT seconds FROM backend_appscreentime`)[0][0]; got != "500 500" {
			t.Fatalf("an older message overwrote the seed's rows: %s", got)
		}
		applyOK(t, f.s, "", stMsg(f.a1, "2025-12-09", 2, map[string]map[int]int64{"com.seed": {9: 2}}, at(-time.Hour)))
		if got := q(`SELECT total_screen_time FROM backend_screentime`)[0][0] + " " + q(`SELECT seconds FROM backend_appscreentime`)[0][0]; got != "2 2" {
			t.Fatalf("a newer message did not replace the seed's rows: %s", got)
		}
	})
}

// Ensure that prune deletes more rows than one bounded step holds, in
// several steps, and leaves no key behind.
func TestGuardianAI_PruneInBoundedSteps(t *testing.T) {
	forEachGAEngine(t, func(t *testing.T, e engine) {
		f := gaFixture(t, e)
		var msgs []hearthMsg
		for i := range 2*pruneBatch + 500 {
			msgs = append(msgs, locMsg(f.a1, at(-3*time.Hour).Add(time.Duration(i)*time.Millisecond), 1, 2, at(-time.Hour)))
		}
		applyOK(t, f.s, "", msgs...)
		n, err := f.s.Prune(context.Background(), at(-time.Hour))
		if err != nil || n != int64(len(msgs)) {
			t.Fatalf("Prune = %d, %v; want %d", n, err, len(msgs))
		}
		q := rawQuerier(t, f.s)
		if got := q(`SELECT (SELECT count(*) FROM backend_locationhistory) + (SELECT count(*) FROM hearth_locationhistory)`)[0][0]; got != "0" {
			t.Fatalf("%s rows and keys left", got)
		}
	})
}
