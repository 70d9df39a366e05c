package apptest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

// guardianQuerier runs a query on the GuardianAI database, as the
// dashboard would, and returns the first column of each row as text.
type guardianQuerier func(t *testing.T, query string) []string

// guardianSchema returns the statements of the GuardianAI dashboard's
// schema as its Django migrations generated it (the project's copy).
func guardianSchema(t *testing.T, engine string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "guardianai", "schema."+engine+".sql"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, `\`) && !strings.HasPrefix(l, "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, st := range strings.Split(strings.Join(lines, "\n"), ";\n") {
		if st = strings.TrimSpace(st); st != "" && !strings.Contains(st, "set_config('search_path'") {
			out = append(out, st)
		}
	}
	return out
}

const guardianChild = `INSERT INTO accounts_child (password, is_superuser, child_hash, first_name, last_name, is_active, date_joined, restricted_apps)
	VALUES ('!', false, $1, 'Kid', '', true, '2025-01-01 00:00:00+00', '[]')`

// guardianSQLite makes a GuardianAI SQLite database with children.
func guardianSQLite(t *testing.T, children ...string) (string, guardianQuerier) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.sqlite3")
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, st := range guardianSchema(t, "sqlite") {
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	for _, c := range children {
		if _, err := db.Exec(strings.Replace(guardianChild, "+00", "", 1), c); err != nil {
			t.Fatal(err)
		}
	}
	return "sqlite://" + path, func(t *testing.T, q string) []string {
		t.Helper()
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v any
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
}

// guardianPostgres makes a GuardianAI PostgreSQL database with children.
func guardianPostgres(t *testing.T, children ...string) (string, guardianQuerier) {
	t.Helper()
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	for _, st := range guardianSchema(t, "postgres") {
		if _, err := c.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	for _, ch := range children {
		if _, err := c.Exec(ctx, guardianChild, ch); err != nil {
			t.Fatal(err)
		}
	}
	return dsn, func(t *testing.T, q string) []string {
		t.Helper()
		rows, err := c.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var out []string
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(v[0]))
		}
		return out
	}
}

// Ensure that a database made by GuardianAI's own migrations receives
// phone data through hearthd → hearth-central and from a phone straight to
// central (a child attached to no home), into the dashboard's tables,
// once per key however often the phone resends.
func TestGuardianAI_EndToEnd(t *testing.T) {
	for _, e := range []struct {
		name string
		make func(t *testing.T, children ...string) (string, guardianQuerier)
	}{{"SQLite", guardianSQLite}, {"Postgres", guardianPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			db, query := e.make(t, "kid-edge", "kid-direct")
			if out, errs, code := RunCentral(t, db, "migrate", "--schema", "guardianai"); code != 0 {
				t.Fatalf("migrate: %d %s %s", code, out, errs)
			}
			var home struct{ HomeID, Token string }
			var raw map[string]string
			CentralJSON(t, db, &raw, "home add", "--json", "--schema", "guardianai", "The Smiths")
			home.HomeID, home.Token = raw["home_id"], raw["token"]
			CentralJSON(t, db, &raw, "child add", "--json", "--schema", "guardianai", "--home", home.HomeID, "--hash", "kid-edge")
			c := StartCentral(t, db, "--schema", "guardianai", "--home-batch-rate", "1000", "--home-batch-burst", "1000")
			d := forwardingHearthd(t, t.TempDir(), c, home.Token)

			day := time.Now().UTC().Format("2006-01-02")
			ts := time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
			send := func(conn *ingesttest.Conn) {
				for range 2 { // the second round is a resend
					conn.Send(ingesttest.Frame("screen_time", fmt.Sprintf(`{"date":%q,"total_screen_time":1800,"app_wise_data":{"com.example.app1":{"9":1800}}}`, day)))
					conn.ExpectAck("screen_time")
					conn.Send(ingesttest.Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":51.5,"longitude":-0.12}`, ts)))
					conn.ExpectAck("location")
					conn.Send(ingesttest.Frame("site_access", fmt.Sprintf(`{"logs":[{"timestamp":%q,"url":"https://x.example/","accessed":true}]}`, ts)))
					conn.ExpectAck("site_access")
				}
			}
			viaEdge := ingesttest.MustDial(t, ingesttest.Target{URL: d.URL}, "/ws/ingest/kid-edge/")
			viaEdge.Expect("connection_established")
			send(viaEdge)
			direct := ingesttest.MustDial(t, ingesttest.Target{URL: c.URL}, "/ws/ingest/kid-direct/")
			direct.Expect("connection_established")
			send(direct)

			testutil.WaitFor(t, 15*time.Second, func() error {
				for q, want := range map[string]string{
					`SELECT count(*) FROM backend_screentime`:      "2",
					`SELECT count(*) FROM backend_appscreentime`:   "2",
					`SELECT count(*) FROM backend_locationhistory`: "2",
					`SELECT count(*) FROM backend_siteaccesslog`:   "2",
				} {
					if got := query(t, q); len(got) != 1 || got[0] != want {
						return fmt.Errorf("%s = %v, want %s", q, got, want)
					}
				}
				return nil
			})
			for q, want := range map[string]string{
				`SELECT count(*) FROM backend_app`:                                             "1",
				`SELECT app_name FROM backend_app`:                                             "App1",
				`SELECT sum(total_screen_time) FROM backend_screentime`:                        "3600",
				`SELECT count(DISTINCT child_id) FROM backend_locationhistory`:                 "2",
				`SELECT count(*) FROM backend_appscreentime WHERE hour = 9 AND seconds = 1800`: "2",
				`SELECT count(*) FROM accounts_child`:                                          "2",
				`SELECT count(*) FROM backend_siteaccesslog WHERE url = 'https://x.example/'`:  "2",
			} {
				if got := query(t, q); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %v, want %s", q, got, want)
				}
			}
		})
	}
}
