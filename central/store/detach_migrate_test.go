package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Ensure that a database a v4 binary made, with a home, a child, its rows
// in every data table and a reader, keeps all of it through 0005_detach
// (SQLite rebuilds the children table), and that afterwards a child can
// be detached and its rows stay while foreign keys are still enforced.
func TestStore_MigrateV4KeepsData(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		dsn := e.dsn(t)
		execRawV4(t, e, dsn, []string{
			`INSERT INTO homes (id, name, token_hash, created_at) VALUES ('h1', 'The Smiths', 'th', '2025-12-01T00:00:00.000000Z')`,
			`INSERT INTO readers (id, home_id, token_hash, created_at) VALUES ('r1', 'h1', 'rh', '2025-12-01T00:00:00.000000Z')`,
			`INSERT INTO children (hash, home_id, created_at, name) VALUES ('kid', 'h1', '2025-12-01T00:00:00.000000Z', 'Ada')`,
			`INSERT INTO screen_time (child, date, total_seconds, received_at) VALUES ('kid', '2025-12-09', 60, '2025-12-10T11:00:00.000000Z')`,
			`INSERT INTO app_screen_time (child, date, app, hour, seconds, received_at) VALUES ('kid', '2025-12-09', 'app.x', 9, 60, '2025-12-10T11:00:00.000000Z')`,
			`INSERT INTO locations (child, ts, latitude, longitude, received_at) VALUES ('kid', '2025-12-10T10:00:00.000000Z', 1, 2, '2025-12-10T11:00:00.000000Z')`,
			`INSERT INTO site_access (child, ts, url, accessed, received_at) VALUES ('kid', '2025-12-10T10:00:00.000000Z', 'https://a.example', true, '2025-12-10T11:00:00.000000Z')`,
		})
		s := open(t, dsn, testOptions())
		recv := " recv=2025-12-10T11:00:00Z"
		want := tables{Days: []string{"kid 2025-12-09 total=60" + recv}, Hours: []string{"kid 2025-12-09 app.x h9 secs=60" + recv},
			Locs:  []string{"kid 2025-12-10T10:00:00Z lat=1 lon=2" + recv},
			Sites: []string{"kid 2025-12-10T10:00:00Z https://a.example accessed=true" + recv}}
		if d := dump(t, s, "kid").diff(want); d != "" {
			t.Fatalf("rows after the upgrade:\n%s", d)
		}
		if kids, err := s.Children(ctx, "h1"); err != nil || fmt.Sprint(kids) != "[kid]" {
			t.Fatalf("children after the upgrade: %v %v", kids, err)
		}
		if names, _ := s.ChildNames(ctx, "h1"); names["kid"] != "Ada" {
			t.Fatalf("names after the upgrade: %v", names)
		}
		if home, err := s.ReaderByToken(ctx, "unknown"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("reader look-up after the upgrade: %q %v", home, err)
		}
		if err := s.DetachChild(ctx, "h1", "kid"); err != nil {
			t.Fatalf("detach after the upgrade: %v", err)
		}
		if _, err := s.RemoveHome(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		if d := dump(t, s, "kid").diff(want); d != "" {
			t.Fatalf("detached child's rows after its home went:\n%s", d)
		}
		if err := execWriter(ctx, s, `INSERT INTO locations (child, ts, latitude, longitude, received_at)
			VALUES ('nobody', '2025-12-10T10:00:00.000000Z', 1, 2, '2025-12-10T11:00:00.000000Z')`); err == nil {
			t.Fatal("a location of no child was stored: foreign keys are off after the migration")
		}
	})
}

// execRawV4 makes the database at dsn as a binary that knew migrations up
// to 0004 made it, then runs stmts in it.
func execRawV4(t *testing.T, e engine, dsn string, stmts []string) {
	t.Helper()
	ctx := context.Background()
	engineDir := map[string]string{"SQLite": "sqlite", "Postgres": "postgres"}[e.name]
	steps := []string{`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)`}
	for _, m := range migrations(engineDir) {
		if m.version > 4 {
			break
		}
		steps = append(steps, m.sql, fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, '%s', '2025-12-01')`, m.version, m.name))
	}
	steps = append(steps, stmts...)
	switch engineDir {
	case "sqlite":
		db, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite://")+"?_pragma=foreign_keys(1)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range steps {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	case "postgres":
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		for _, q := range steps {
			if _, err := c.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	default:
		t.Fatalf("no migrations for engine %s", e.name)
	}
}

// execWriter runs a statement on the store's writer and returns its error.
func execWriter(ctx context.Context, s Store, q string) error {
	switch s := s.(type) {
	case *SQLite:
		_, err := s.w.ExecContext(ctx, q)
		return err
	case *Postgres:
		return s.pool.with(ctx, func(c *pgx.Conn) error { _, err := c.Exec(ctx, q); return err })
	}
	return fmt.Errorf("unknown store %T", s)
}
