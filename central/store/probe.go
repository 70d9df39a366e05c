package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/guardianai/hearth/internal/owner"
	"github.com/jackc/pgx/v5"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The heartbeat write: an upsert, so a row deleted by hand comes back.
const (
	sqliteHeartbeat = `INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`
	pgHeartbeat     = `INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`
)

// ProbeWrite rewrites the heartbeat row; see Store. A read-only file is
// explained: whose it is, its mode, and whom this process runs as.
func (s *SQLite) ProbeWrite(ctx context.Context) error {
	return s.probe(ctx, sqliteHeartbeat, fmtTS(s.opts.Now()))
}

// probe runs the heartbeat write q with the time at.
func (s *SQLite) probe(ctx context.Context, q, at string) error {
	_, err := s.w.ExecContext(ctx, q, at)
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY {
		return fmt.Errorf("write probe: %w: %s", ErrUnavailable, readOnlyReason(s.path))
	}
	return sqliteErr("write probe", err)
}

// readOnlyReason says why this process cannot write the SQLite database
// at path, in the terms an operator fixes it in.
func readOnlyReason(path string) string {
	_, me := owner.Me()
	for _, p := range []string{path, filepath.Dir(path)} {
		f, err := owner.Of(p)
		if err != nil {
			continue
		}
		if writable(p) {
			continue
		}
		if uid, _ := owner.Me(); f.UID != uid {
			return fmt.Sprintf("database file %s is read-only for this process: %s belongs to %s (mode %04o) and this process runs as %s; "+
				"run as %s, or give the directory and its files to %s (chown -R)", path, p, owner.Name(f.UID), f.Mode.Perm(), me, owner.Name(f.UID), me)
		}
		return fmt.Sprintf("database file %s is read-only for this process: %s has mode %04o, not writable by its owner %s; chmod u+w %s",
			path, p, f.Mode.Perm(), me, p)
	}
	return fmt.Sprintf("database file %s is read-only (attempt to write a readonly database; a read-only file system?)", path)
}

// writable reports whether this process may open path for writing (a
// directory: create a file in it), as SQLite would need to.
func writable(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	if fi.IsDir() {
		f, err := os.CreateTemp(path, ".hearth-write-probe-*")
		if err != nil {
			return false
		}
		f.Close()
		os.Remove(f.Name())
		return true
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// ProbeWrite rewrites the heartbeat row; see Store.
func (s *Postgres) ProbeWrite(ctx context.Context) error {
	return pgErr("write probe", s.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, pgHeartbeat, micro(s.opts.Now()))
		return err
	}))
}
