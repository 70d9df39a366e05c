package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/internal/testutil"
	"github.com/jackc/pgx/v5"
)

// Ensure that a reader token finds its home, is stored only hashed, and is
// neither a home token nor found by one.
func TestStore_Readers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		f := newFixture(t, e)
		id, tok, err := f.s.AddReader(ctx, f.homeA)
		if err != nil || !strings.HasPrefix(id, "r") || len(tok) < 32 {
			t.Fatalf("AddReader = %q, %q, %v", id, tok, err)
		}
		if home, err := f.s.ReaderByToken(ctx, tok); err != nil || home != f.homeA {
			t.Fatalf("ReaderByToken = %q, %v; want %q", home, err, f.homeA)
		}
		_, tok2, err := f.s.AddReader(ctx, f.homeA)
		if err != nil || tok2 == tok {
			t.Fatalf("second reader: %q %v", tok2, err)
		}
		for name, bad := range map[string]string{"home token": f.tokA, "unknown": "nope", "empty": ""} {
			if _, err := f.s.ReaderByToken(ctx, bad); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("ReaderByToken(%s) = %v, want ErrUnauthorized", name, err)
			}
		}
		if _, err := f.s.HomeByToken(ctx, tok); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("HomeByToken(reader token) = %v, want ErrUnauthorized: a reader can never send batches", err)
		}
		if _, _, err := f.s.AddReader(ctx, "h-nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AddReader(unknown home) = %v, want ErrNotFound", err)
		}
		rows := rawQuerier(t, f.s)(`SELECT id, home_id, token_hash FROM readers ORDER BY created_at, id`)
		if len(rows) != 2 {
			t.Fatalf("readers rows %v", rows)
		}
		for _, r := range rows {
			if strings.Contains(strings.Join(r, " "), tok) || strings.Contains(strings.Join(r, " "), tok2) || r[1] != f.homeA {
				t.Fatalf("reader row %v holds the token or the wrong home", r)
			}
		}
	})
}

// Ensure that the write probe rewrites the heartbeat row (bringing back a
// deleted one) and reports a database that refuses writes.
func TestStore_ProbeWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		dsn := e.dsn(t)
		s := open(t, dsn, testOptions())
		if err := s.ProbeWrite(ctx); err != nil {
			t.Fatalf("ProbeWrite on a fresh database: %v", err)
		}
		q := rawQuerier(t, s)
		if rows := q(`SELECT id, at FROM heartbeat`); len(rows) != 1 || !strings.HasPrefix(rows[0][1], "2025-12-10T12:00:00") {
			t.Fatalf("heartbeat %v", rows)
		}
		rawExec(t, s, `DELETE FROM heartbeat`)
		if err := s.ProbeWrite(ctx); err != nil || len(q(`SELECT id FROM heartbeat`)) != 1 {
			t.Fatalf("ProbeWrite after the row was deleted: %v", err)
		}
		switch s := s.(type) {
		case *SQLite:
			// The one writer connection refuses writes from now on, as a
			// read-only file would.
			rawExec(t, s, `PRAGMA query_only = 1`)
			err := s.ProbeWrite(ctx)
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "read-only") {
				t.Fatalf("ProbeWrite on a read-only connection = %v", err)
			}
		case *Postgres:
			readOnlyPostgres(t, dsn)
			testutil.WaitFor(t, 30*time.Second, func() error {
				err := s.ProbeWrite(ctx)
				if err == nil || !strings.Contains(err.Error(), "read-only") {
					return errors.New("probe: " + errText(err))
				}
				return nil
			})
		}
	})
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// readOnlyPostgres makes the database at dsn read-only for new sessions,
// as after a failover to a standby, and ends the sessions open on it.
func readOnlyPostgres(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, sql := range []string{
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$`,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
	} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// Ensure that a SQLite file this process may not write is reported by the
// probe with its mode and what to do. (Root writes any file; the apptest
// TestCentral_ReadOnlyDatabase covers a root-run suite with a service user.)
func TestSQLite_ProbeWrite_ReadOnlyFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write a read-only file; apptest TestCentral_ReadOnlyDatabase covers this as an unprivileged user")
	}
	path := filepath.Join(t.TempDir(), "central.db")
	if err := Migrate(context.Background(), "sqlite://"+path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	s := open(t, "sqlite://"+path, testOptions())
	err := s.ProbeWrite(context.Background())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "mode 0444") || !strings.Contains(err.Error(), "chmod u+w") {
		t.Fatalf("ProbeWrite on a 0444 file = %v", err)
	}
}

// Ensure that a database migrated before reader tokens, the heartbeat and
// the lifecycle gets them on the next open.
func TestStore_MigrateFromV1(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		dsn := e.dsn(t)
		s := open(t, dsn, testOptions())
		undo := []string{`DROP TABLE readers`, `DROP TABLE heartbeat`, `DROP TABLE grace_tokens`, `ALTER TABLE children DROP COLUMN name`,
			`DROP TABLE console_sessions`, `DROP TABLE home_messages`} // 0006_console.sql
		for _, col := range []string{"revoked_at", "edge_id", "edge_version", "backlog_messages", "backlog_oldest_seconds", "dead_letters"} {
			undo = append(undo, `ALTER TABLE homes DROP COLUMN `+col) // 0004_lifecycle.sql
		}
		for _, sql := range append(undo, `DELETE FROM schema_migrations WHERE version > 1`) {
			rawExec(t, s, sql)
		}
		s.Close()
		s = open(t, dsn, testOptions())
		if err := s.ProbeWrite(ctx); err != nil {
			t.Fatalf("probe after the upgrade: %v", err)
		}
		home, _, err := s.AddHome(ctx, "h")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.AddReader(ctx, home); err != nil {
			t.Fatalf("reader after the upgrade: %v", err)
		}
		if _, err := s.RotateToken(ctx, home, time.Hour); err != nil {
			t.Fatalf("rotation after the upgrade: %v", err)
		}
		if err := s.AddConsoleSession(ctx, "id", ConsoleSession{Expires: testNow.Add(time.Hour)}, testNow); err != nil {
			t.Fatalf("console session after the upgrade: %v", err)
		}
	})
}
