package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5"
)

// AddHome creates a home in hearth_homes; see Store.
func (g *GuardianPostgres) AddHome(ctx context.Context, name string) (string, string, error) {
	return pgAddHome(ctx, g.db.pool, `INSERT INTO hearth_homes (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)`, name, g.opts.Now())
}

const gaPGHomeCols = `h.id, h.name, h.created_at, h.clock_offset_ms, h.last_seen,
	(SELECT count(*) FROM hearth_home_children AS c WHERE c.home_id = h.id)`

// ListHomes returns every home; see Store.
func (g *GuardianPostgres) ListHomes(ctx context.Context) ([]Home, error) {
	homes := []Home{}
	err := g.db.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+gaPGHomeCols+` FROM hearth_homes AS h ORDER BY h.created_at, h.id`)
		if err != nil {
			return err
		}
		homes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Home, error) { return scanPGHome(r) })
		return err
	})
	return homes, pgErr("list homes", err)
}

// HomeByToken finds the home of a token; see Store.
func (g *GuardianPostgres) HomeByToken(ctx context.Context, token string) (Home, error) {
	var h Home
	err := g.db.pool.with(ctx, func(c *pgx.Conn) error {
		var err error
		h, err = scanPGHome(c.QueryRow(ctx, `SELECT `+gaPGHomeCols+` FROM hearth_homes AS h WHERE h.token_hash = $1`, hashToken(token)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Home{}, ErrUnauthorized
	}
	return h, pgErr("find home by token", err)
}

// AddReader creates a reader token; see Store.
func (g *GuardianPostgres) AddReader(ctx context.Context, homeID string) (string, string, error) {
	return pgAddReader(ctx, g.db.pool, `INSERT INTO hearth_readers (id, home_id, token_hash, created_at)
		SELECT $1, id, $2, $3 FROM hearth_homes WHERE id = $4`, homeID, g.opts.Now())
}

// ReaderByToken finds the home of a reader token; see Store.
func (g *GuardianPostgres) ReaderByToken(ctx context.Context, token string) (string, error) {
	return pgReaderByToken(ctx, g.db.pool, `SELECT home_id FROM hearth_readers WHERE token_hash = $1`, token)
}

// RecordClockOffset stores a home's clock offset; see Store.
func (g *GuardianPostgres) RecordClockOffset(ctx context.Context, homeID string, offset time.Duration, at time.Time) error {
	return pgRecordClockOffset(ctx, g.db.pool, `UPDATE hearth_homes SET clock_offset_ms = $1, last_seen = $2 WHERE id = $3`, homeID, offset, at)
}

// AddChild attaches an existing GuardianAI child to a home; see AttachChild.
func (g *GuardianPostgres) AddChild(ctx context.Context, homeID, hash string) (string, error) {
	if _, err := g.AttachChild(ctx, homeID, hash, ""); err != nil {
		return "", err
	}
	return hash, nil
}

// AttachChild attaches an existing GuardianAI child to a home; see
// GuardianSQLite.AttachChild.
func (g *GuardianPostgres) AttachChild(ctx context.Context, homeID, hash, name string) (string, error) {
	if err := checkAttach(hash, name); err != nil {
		return "", err
	}
	err := g.db.tx(ctx, "attach child", pgx.TxOptions{}, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM hearth_homes WHERE id = $1 FOR SHARE`, homeID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		} else if err != nil {
			return err
		}
		var first string
		err = tx.QueryRow(ctx, `SELECT first_name FROM accounts_child WHERE child_hash = $1`, hash).Scan(&first)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: no accounts_child row has child_hash %q; create the child in the dashboard first", ErrUnknownChild, hash)
		} else if err != nil {
			return err
		}
		if name == "" {
			name = first
		}
		tag, err := tx.Exec(ctx, `INSERT INTO hearth_home_children (home_id, child_hash, name, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, homeID, hash, name, micro(g.opts.Now()))
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: the child is in home %q already", ErrExists, homeID)
		} else if err != nil {
			return err
		}
		// In a home again: no longer detached (DetachedChildren).
		_, err = tx.Exec(ctx, `DELETE FROM hearth_detached_children WHERE child_hash = $1`, hash)
		return err
	})
	if err != nil {
		return "", err
	}
	return name, nil
}

// Children lists the children attached to a home that GuardianAI still
// has; see Store.
func (g *GuardianPostgres) Children(ctx context.Context, homeID string) ([]string, error) {
	return pgHomeChildren(ctx, g.db.pool, `SELECT c.child_hash FROM hearth_homes AS h
			LEFT JOIN (hearth_home_children AS c JOIN accounts_child AS a ON a.child_hash = c.child_hash) ON c.home_id = h.id
			WHERE h.id = $1 ORDER BY c.child_hash COLLATE "C"`, homeID)
}

// ChildHome returns the first of a child's homes; see GuardianSQLite.ChildHome.
func (g *GuardianPostgres) ChildHome(ctx context.Context, hash string) (string, bool, error) {
	homes, ok, err := g.ChildHomes(ctx, hash)
	if !ok || err != nil || len(homes) == 0 {
		return "", ok, err
	}
	return homes[0], true, nil
}

// ChildHomes returns a child's homes; see Store.
func (g *GuardianPostgres) ChildHomes(ctx context.Context, hash string) ([]string, bool, error) {
	if checkChildHash(hash) != nil {
		return nil, false, nil
	}
	var out []*string
	err := g.db.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT h.home_id FROM accounts_child AS a
			LEFT JOIN hearth_home_children AS h ON h.child_hash = a.child_hash WHERE a.child_hash = $1 ORDER BY h.home_id COLLATE "C"`, hash)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[*string])
		return err
	})
	if err != nil {
		return nil, false, pgErr("look up child", err)
	}
	homes := []string{}
	for _, h := range out {
		if h != nil {
			homes = append(homes, *h)
		}
	}
	return homes, len(out) > 0, nil
}

// Stats counts rows per table; see GuardianSQLite.Stats.
func (g *GuardianPostgres) Stats(ctx context.Context) (map[string]int64, error) {
	var h, c, st, ast, l, sa int64
	err := g.db.pool.with(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, gaStatsSQL).Scan(&h, &c, &st, &ast, &l, &sa)
	})
	if err != nil {
		return nil, pgErr("stats", err)
	}
	return statsMap(h, c, st, ast, l, sa), nil
}

// ScreenTime reads a child's days from the Django tables; see Store.
func (g *GuardianPostgres) ScreenTime(ctx context.Context, child, from, to string) ([]ScreenTimeDay, error) {
	return g.db.screenTime(ctx, `SELECT s.date, s.total_screen_time, coalesce(v.received_at, s.updated)
			FROM backend_screentime AS s JOIN accounts_child AS c ON c.id = s.child_id
			LEFT JOIN hearth_screentime AS v ON v.row_id = s.id
			WHERE c.child_hash = $1 AND s.date BETWEEN $2::text::date AND $3::text::date ORDER BY s.date`,
		`SELECT s.date, a.domain, h.hour, h.seconds
			FROM backend_appscreentime AS h JOIN backend_screentime AS s ON s.id = h.screen_time_id
			JOIN accounts_child AS c ON c.id = s.child_id JOIN backend_app AS a ON a.id = h.app_id
			WHERE c.child_hash = $1 AND s.date BETWEEN $2::text::date AND $3::text::date ORDER BY s.date, a.domain COLLATE "C", h.hour`, child, from, to)
}

// Locations reads a child's fixes, one per timestamp; see GuardianSQLite.Locations.
func (g *GuardianPostgres) Locations(ctx context.Context, child string, from, to time.Time) ([]hearth.Location, error) {
	return pgLocations(ctx, g.db.pool, `SELECT k.ts, l.latitude, l.longitude
			FROM hearth_locationhistory AS k JOIN accounts_child AS c ON c.id = k.child_id
			JOIN backend_locationhistory AS l ON l.id = k.row_id
			WHERE c.child_hash = $1 AND k.ts >= $2 AND k.ts <= $3 ORDER BY k.ts`, child, from, to)
}

// SiteAccess reads a child's visits, one per key; see Store.
func (g *GuardianPostgres) SiteAccess(ctx context.Context, child string, from, to time.Time) ([]hearth.SiteVisit, error) {
	return pgVisits(ctx, g.db.pool, `SELECT k.ts, s.url, s.accessed
			FROM hearth_siteaccesslog AS k JOIN accounts_child AS c ON c.id = k.child_id
			JOIN backend_siteaccesslog AS s ON s.id = k.row_id
			WHERE c.child_hash = $1 AND k.ts >= $2 AND k.ts <= $3 ORDER BY k.ts, k.url COLLATE "C"`, child, from, to)
}

// gaPGPrune deletes up to pruneBatch old rows of one table and their
// versions or keys per statement; see GuardianSQLite.Prune.
var gaPGPrune = []struct {
	table string
	sql   string
	byDay bool
}{
	{"backend_appscreentime", `WITH d AS (DELETE FROM backend_appscreentime WHERE id IN (SELECT a.id FROM backend_appscreentime AS a
		JOIN backend_screentime AS s ON s.id = a.screen_time_id WHERE s.date < $1::text::date LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_appscreentime WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`, true},
	{"backend_screentime", `WITH d AS (DELETE FROM backend_screentime WHERE id IN (SELECT s.id FROM backend_screentime AS s
		WHERE s.date < $1::text::date AND NOT EXISTS (SELECT 1 FROM backend_appscreentime AS a WHERE a.screen_time_id = s.id) LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_screentime WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`, true},
	{"backend_locationhistory", `WITH d AS (DELETE FROM backend_locationhistory WHERE id IN (SELECT id FROM backend_locationhistory
		WHERE "timestamp" < $1::timestamptz LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_locationhistory WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`, false},
	{"backend_siteaccesslog", `WITH d AS (DELETE FROM backend_siteaccesslog WHERE id IN (SELECT id FROM backend_siteaccesslog
		WHERE "timestamp" < $1::timestamptz LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_siteaccesslog WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`, false},
}

// Prune deletes old data in bounded transactions; see GuardianSQLite.Prune.
func (g *GuardianPostgres) Prune(ctx context.Context, before time.Time) (int64, error) {
	day, ts := pruneDay(before), ceilMicro(before)
	var total int64
	for _, st := range gaPGPrune {
		var arg any = ts
		if st.byDay {
			arg = day
		}
		for {
			var n int64
			err := g.db.pool.with(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, st.sql, arg).Scan(&n) })
			total += n
			if err != nil {
				return total, pgErr("prune "+st.table, err)
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return total, g.lc().pruneMessages(ctx)
}

// ProbeWrite rewrites hearth's heartbeat row; see Store.
func (g *GuardianPostgres) ProbeWrite(ctx context.Context) error {
	return pgErr("write probe", g.db.pool.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO hearth_heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, micro(g.opts.Now()))
		return err
	}))
}

// Apps lists the dashboard's backend_app rows, by domain.
func (g *GuardianPostgres) Apps(ctx context.Context) ([]App, error) {
	out := []App{}
	var a App
	err := pgEachRow(ctx, g.db.pool, appsSQL, nil, []any{&a.Domain, &a.Name, &a.IconURL}, func() { out = append(out, a) })
	return out, pgErr("list apps", err)
}
