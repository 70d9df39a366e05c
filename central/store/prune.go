package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Prune in bounded batches. One DELETE of everything older than the cut
// holds SQLite's only writer for as long as it takes (on a large
// database: every apply stalls once an hour) and makes one huge
// transaction on PostgreSQL. Instead each statement deletes the oldest
// rows of one child, at most about pruneRows, through the primary key
// (child, time…): an index range scan that costs the same however large
// the table is, in its own short transaction, so batches of edges are
// applied between two of them. (The primary keys lead with the child,
// so a cut by time alone would scan the table; per child it does not,
// and no index is added that every insert would pay for.)
//
// A statement deletes a child's rows up to the time of its n-th oldest
// row: a few more when rows share that time (visits of one instant, a
// day's app hours), never the whole table. After each statement the
// prune rests for rest times as long as the statement took, so that
// however much there is to delete (the first prune of a large database,
// a shorter retention) it takes a bounded share of the database: on
// SQLite a batch of edges waits behind at most one small delete, not
// behind the prune (bench/RESULTS.md, "Central at scale").
const (
	pruneRows       = 500 // PostgreSQL: rows per statement
	pruneRowsSQLite = 100 // SQLite: its one writer is held for one statement
	pruneRest       = 1   // PostgreSQL: half the time deleting
	pruneRestSQLite = 3   // SQLite: a quarter of the writer's time
)

// pruneTable is one table's batched delete.
type pruneTable struct {
	table, col string
	byDay      bool // col is a date (YYYY-MM-DD), compared with the prune day
}

var pruneTables = []pruneTable{
	{"screen_time", "date", true},
	{"app_screen_time", "date", true},
	{"locations", "ts", false},
	{"site_access", "ts", false},
}

// sql is the batch statement; args are child, child, cut, limit
// (SQLite's ?) or $1 child, $2 cut, $3 limit (PostgreSQL). The outer
// bound is only the subquery's, below the cut: with the cut there too,
// SQLite would range-scan up to the cut, every old row of the child,
// for each batch.
func (p pruneTable) sql(postgres bool, cast string) string {
	q := `DELETE FROM {t} WHERE child = ? AND {c} <= (SELECT max({c}) FROM
		(SELECT {c} FROM {t} WHERE child = ? AND {c} < ?{cast} ORDER BY {c} LIMIT ?) AS oldest)`
	q = strings.NewReplacer("{t}", p.table, "{c}", p.col, "{cast}", cast).Replace(q)
	if postgres {
		for _, n := range []string{"$1", "$1", "$2", "$3"} {
			q = strings.Replace(q, "?", n, 1)
		}
	}
	return q
}

// pruneChildren deletes, child by child and table by table, the rows
// older than the cut in batches of about rows; del runs one batch
// statement and returns the rows it deleted. After a statement that
// deleted something it rests rest times as long as it took. It stops at
// ctx's end with what it deleted so far.
func pruneChildren(ctx context.Context, children []string, rows int, rest time.Duration, del func(t pruneTable, child string) (int64, error)) (int64, error) {
	var total int64
	for _, t := range pruneTables {
		for _, child := range children {
			for {
				start := time.Now()
				n, err := del(t, child)
				total += n
				if err != nil {
					return total, fmt.Errorf("prune %s: %w", t.table, err)
				}
				if n > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(rest * time.Since(start)):
					}
				}
				if err := ctx.Err(); err != nil {
					return total, fmt.Errorf("%w: %w", ErrUnavailable, err)
				}
				if n < int64(rows) {
					break
				}
			}
		}
	}
	return total, nil
}

// Prune deletes old data in batches; see Store and pruneRows.
func (s *SQLite) Prune(ctx context.Context, before time.Time) (int64, error) {
	children, err := sqliteChildren(ctx, s)
	if err != nil {
		return 0, sqliteErr("prune", err)
	}
	day, ts := pruneDay(before), fmtTS(ceilMicro(before))
	n, err := pruneChildren(ctx, children, pruneRowsSQLite, pruneRestSQLite, func(t pruneTable, child string) (int64, error) {
		cut := ts
		if t.byDay {
			cut = day
		}
		res, err := s.w.ExecContext(ctx, t.sql(false, ""), child, child, cut, pruneRowsSQLite)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	})
	if err != nil {
		return n, sqliteErr("prune", err)
	}
	return n, s.lc().pruneMessages(ctx)
}

func sqliteChildren(ctx context.Context, s *SQLite) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT hash FROM children ORDER BY hash`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Prune deletes old data in batches; see Store and pruneRows.
func (s *Postgres) Prune(ctx context.Context, before time.Time) (int64, error) {
	var children []string
	err := s.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT hash FROM children ORDER BY hash`)
		if err != nil {
			return err
		}
		children, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return 0, pgErr("prune", err)
	}
	day, ts := pruneDay(before), ceilMicro(before)
	n, err := pruneChildren(ctx, children, pruneRows, pruneRest, func(t pruneTable, child string) (int64, error) {
		var cut any = ts
		cast := ""
		if t.byDay {
			cut, cast = day, "::text::date"
		}
		var n int64
		err := s.pool.with(ctx, func(c *pgx.Conn) error {
			tag, err := c.Exec(ctx, t.sql(true, cast), child, cut, pruneRows)
			n = tag.RowsAffected()
			return err
		})
		return n, err
	})
	if err != nil {
		return n, pgErr("prune", err)
	}
	return n, s.lc().pruneMessages(ctx)
}

// pgPruneLock is the advisory lock key held by the replica that prunes.
// ("prune" in ASCII; pgMigrationLock is another key).
const pgPruneLock int64 = 0x7072756e65

// PruneLock takes PostgreSQL's prune lock for this replica if no other
// holds it: ok false means another replica prunes now. release gives it
// back. The lock lives on one pooled connection held until release (if
// that connection dies, the server releases the lock with it).
func (s *Postgres) PruneLock(ctx context.Context) (release func(), ok bool, err error) {
	c, err := s.pool.acquire(ctx)
	if err != nil {
		return nil, false, pgErr("prune lock", err)
	}
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, pgPruneLock).Scan(&ok); err != nil || !ok {
		c.Release()
		return nil, false, pgErr("prune lock", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.Exec(uctx, `SELECT pg_advisory_unlock($1)`, pgPruneLock); err != nil {
			c.Conn().Close(uctx) // closing the session releases the lock
		}
		c.Release()
	}, true, nil
}

// PruneLocker is a store whose replicas prune one at a time.
type PruneLocker interface {
	PruneLock(ctx context.Context) (release func(), ok bool, err error)
}

// PruneLock: see Postgres.PruneLock.
func (g *GuardianPostgres) PruneLock(ctx context.Context) (func(), bool, error) {
	return g.db.PruneLock(ctx)
}
