package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/jackc/pgx/v5"
)

// The dump of each schema's tables: child, key..., value..., received_at.
var dumpQueries = [4]string{
	`SELECT child, date, total_seconds, received_at FROM screen_time`,
	`SELECT child, date, app, hour, seconds, received_at FROM app_screen_time`,
	`SELECT child, ts, latitude, longitude, received_at FROM locations`,
	`SELECT child, ts, url, accessed, received_at FROM site_access`,
}

// gaDumpQueries read every Django row (a duplicate shows as a second row),
// with the received time hearth keeps for it (a seed row's own time when
// it has none).
var gaDumpQueries = [4]string{
	`SELECT c.child_hash, s.date, s.total_screen_time, coalesce(v.received_at, s.updated)
		FROM backend_screentime AS s JOIN accounts_child AS c ON c.id = s.child_id LEFT JOIN hearth_screentime AS v ON v.row_id = s.id`,
	`SELECT c.child_hash, s.date, a.domain, h.hour, h.seconds, coalesce(v.received_at, h.updated)
		FROM backend_appscreentime AS h JOIN backend_screentime AS s ON s.id = h.screen_time_id
		JOIN accounts_child AS c ON c.id = s.child_id JOIN backend_app AS a ON a.id = h.app_id
		LEFT JOIN hearth_appscreentime AS v ON v.row_id = h.id`,
	`SELECT c.child_hash, l.timestamp, l.latitude, l.longitude, coalesce(k.received_at, l.created)
		FROM backend_locationhistory AS l JOIN accounts_child AS c ON c.id = l.child_id LEFT JOIN hearth_locationhistory AS k ON k.row_id = l.id`,
	`SELECT c.child_hash, l.timestamp, l.url, l.accessed, coalesce(k.received_at, l.created)
		FROM backend_siteaccesslog AS l JOIN accounts_child AS c ON c.id = l.child_id LEFT JOIN hearth_siteaccesslog AS k ON k.row_id = l.id`,
}

func isGuardian(s Store) bool {
	switch s.(type) {
	case *GuardianSQLite, *GuardianPostgres:
		return true
	}
	return false
}

// gaEngines are the engines with the GuardianAI schema: each database is
// made from the schema GuardianAI's own migrations generated
// (testdata/guardianai) and holds the fixture's children in accounts_child.
var gaEngines = []engine{
	{"SQLite_GuardianAI", func(t testing.TB) string { return gaSQLiteDSN(t, fixtureChildren...) }, func(testing.TB) {}, SchemaGuardianAI},
	{"Postgres_GuardianAI", func(t testing.TB) string { return gaPostgresDSN(t, fixtureChildren...) }, pgtest.Require, SchemaGuardianAI},
}

// fixtureChildren are the children newFixture attaches to homes.
var fixtureChildren = []string{"child-a1", "child-a2", "child-b1"}

// openEngine opens a fresh database of e with the test options.
func openEngine(t testing.TB, e engine) Store {
	opts := testOptions()
	opts.Schema = e.schema
	return open(t, e.dsn(t), opts)
}

// djangoSchema returns the generated schema of an engine ("sqlite",
// "postgres") as statements.
func djangoSchema(t testing.TB, engine string) []string {
	t.Helper()
	// The schema is the project's copy at the module root (testdata/guardianai).
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "guardianai", "schema."+engine+".sql"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		// pg_dump's psql meta-commands (\restrict) and comments.
		if strings.HasPrefix(l, `\`) || strings.HasPrefix(l, "--") {
			continue
		}
		lines = append(lines, l)
	}
	var out []string
	for _, st := range strings.Split(strings.Join(lines, "\n"), ";\n") {
		st = strings.TrimSpace(st)
		// pg_dump empties search_path for its session; the tests' own
		// queries name tables without a schema.
		if st != "" && !strings.Contains(st, "set_config('search_path'") {
			out = append(out, st)
		}
	}
	return out
}

// gaSQLiteDSN makes a SQLite file as GuardianAI's migrations make it, with
// an accounts_child row per hash.
func gaSQLiteDSN(t testing.TB, children ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.sqlite3")
	db, err := openSQLiteConns(context.Background(), path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range djangoSchema(t, "sqlite") {
		if _, err := db.w.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	for _, c := range children {
		if _, err := db.w.Exec(insertChildSQL, c, "first-"+c); err != nil {
			t.Fatal(err)
		}
	}
	return "sqlite://" + path
}

// insertChildSQL creates a GuardianAI child as the dashboard would.
const insertChildSQL = `INSERT INTO accounts_child (password, is_superuser, child_hash, first_name, last_name, is_active, date_joined, restricted_apps)
	VALUES ('!', false, $1, $2, '', true, '2025-01-01 00:00:00', '[]')`

// gaPostgresDSN makes a PostgreSQL database as GuardianAI's migrations
// make it, with an accounts_child row per hash.
func gaPostgresDSN(t testing.TB, children ...string) string {
	t.Helper()
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, st := range djangoSchema(t, "postgres") {
		if _, err := c.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	for _, ch := range children {
		if _, err := c.Exec(ctx, insertChildSQL, ch, "first-"+ch); err != nil {
			t.Fatal(err)
		}
	}
	return dsn
}

// openRaw returns a function running statements on the database at dsn
// without hearth (as the seed or the dashboard would).
func openRaw(t testing.TB, dsn string, pg bool) func(sql string) {
	t.Helper()
	ctx := context.Background()
	if pg {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return func(sql string) {
			t.Helper()
			if _, err := c.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	}
	db, err := openSQLiteConns(ctx, strings.TrimPrefix(dsn, "sqlite://"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func(sql string) {
		t.Helper()
		if _, err := db.w.ExecContext(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}
