package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgLC is the lifecycle on PostgreSQL, for either schema: the same
// statements over that schema's tables.
type pgLC struct {
	db       *Postgres
	t        lcTables
	homeCols string // pgHomeCols or gaPGHomeCols
	now      func() time.Time
}

func (s *Postgres) lc() pgLC {
	return pgLC{db: s, t: hearthTables, homeCols: pgHomeCols, now: s.opts.Now}
}

func (g *GuardianPostgres) lc() pgLC {
	return pgLC{db: g.db, t: guardianTables, homeCols: gaPGHomeCols, now: g.opts.Now}
}

// exec runs one statement and returns the rows it touched.
func (l pgLC) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	var n int64
	err := l.db.pool.with(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, pgErr(op, err)
}

// execOne runs one statement that must touch a row; ErrNotFound about
// what otherwise.
func (l pgLC) execOne(ctx context.Context, op, what, query string, args ...any) error {
	n, err := l.exec(ctx, op, query, args...)
	if err == nil && n == 0 {
		return fmt.Errorf("%s: %s: %w", op, what, ErrNotFound)
	}
	return err
}

func (l pgLC) rotate(ctx context.Context, homeID string, grace time.Duration) (string, error) {
	token, now := newToken(), micro(l.now())
	err := l.db.tx(ctx, "rotate token", pgx.TxOptions{}, func(tx pgx.Tx) error {
		var old string
		var revoked bool
		err := tx.QueryRow(ctx, `SELECT token_hash, revoked_at IS NOT NULL FROM `+l.t.homes+` WHERE id = $1 FOR UPDATE`, homeID).Scan(&old, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		} else if err != nil {
			return err
		}
		if err := l.endGrace(ctx, tx, homeID, grace, now); err != nil {
			return err
		}
		if grace > 0 && !revoked {
			if _, err := tx.Exec(ctx, `INSERT INTO `+l.t.grace+` (token_hash, home_id, expires_at) VALUES ($1, $2, $3)`,
				old, homeID, now.Add(grace)); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE `+l.t.homes+` SET token_hash = $1, revoked_at = NULL WHERE id = $2`, hashToken(token), homeID)
		return err
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// endGrace deletes the home's grace tokens: all of them for an unplanned
// rotation (grace 0: a leak), the expired ones otherwise.
func (l pgLC) endGrace(ctx context.Context, tx pgx.Tx, homeID string, grace time.Duration, now time.Time) error {
	q, args := `DELETE FROM `+l.t.grace+` WHERE home_id = $1`, []any{homeID}
	if grace > 0 {
		q, args = q+` AND expires_at <= $2`, append(args, now)
	}
	_, err := tx.Exec(ctx, q, args...)
	return err
}

func (l pgLC) revoke(ctx context.Context, homeID string) error {
	now := micro(l.now())
	return l.db.tx(ctx, "revoke home", pgx.TxOptions{}, func(tx pgx.Tx) error {
		// The token hash of a token nobody was given: no token matches.
		tag, err := tx.Exec(ctx, `UPDATE `+l.t.homes+` SET token_hash = $1, revoked_at = $2 WHERE id = $3`,
			hashToken(newToken()), now, homeID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		}
		return l.endGrace(ctx, tx, homeID, 0, now)
	})
}

func (l pgLC) homeByGraceToken(ctx context.Context, token string) (Home, error) {
	var h Home
	err := l.db.pool.with(ctx, func(c *pgx.Conn) error {
		var err error
		h, err = scanPGHome(c.QueryRow(ctx, `SELECT `+l.homeCols+` FROM `+l.t.grace+` AS g JOIN `+l.t.homes+` AS h ON h.id = g.home_id
			WHERE g.token_hash = $1 AND g.expires_at > $2 AND h.revoked_at IS NULL`, hashToken(token), micro(l.now())))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Home{}, ErrUnauthorized
	}
	return h, pgErr("find home by grace token", err)
}

// deleteHome deletes the home row; its links, readers and grace tokens cascade.
func (l pgLC) deleteHome(ctx context.Context, homeID string) error {
	return l.execOne(ctx, "remove home", "home "+homeID, `DELETE FROM `+l.t.homes+` WHERE id = $1`, homeID)
}

func (l pgLC) homeKids(ctx context.Context, homeID string) ([]string, error) {
	return pgHomeChildren(ctx, l.db.pool, `SELECT c.`+l.t.kidsHash+` FROM `+l.t.homes+` AS h LEFT JOIN `+l.t.kids+
		` AS c ON c.`+l.t.kidsHome+` = h.id WHERE h.id = $1 ORDER BY 1`, homeID)
}

func (l pgLC) setName(ctx context.Context, homeID, hash, name string) error {
	if err := CheckChildName(name); err != nil {
		return err
	}
	return l.execOne(ctx, "name child", fmt.Sprintf("child %q in home %q", hash, homeID),
		`UPDATE `+l.t.kids+` SET name = $1 WHERE `+l.t.kidsHome+` = $2 AND `+l.t.kidsHash+` = $3`, name, homeID, hash)
}

func (l pgLC) names(ctx context.Context, homeID string) (map[string]string, error) {
	out := map[string]string{}
	err := l.db.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+l.t.kidsHash+`, name FROM `+l.t.kids+` WHERE `+l.t.kidsHome+` = $1 AND name <> ''`, homeID)
		if err != nil {
			return err
		}
		var h, n string
		_, err = pgx.ForEachRow(rows, []any{&h, &n}, func() error { out[h] = n; return nil })
		return err
	})
	return out, pgErr("child names", err)
}

func (l pgLC) recordEdge(ctx context.Context, homeID string, e EdgeState) error {
	_, err := l.exec(ctx, "record edge", `UPDATE `+l.t.homes+` SET edge_id = $1, edge_version = $2, backlog_messages = $3,
		backlog_oldest_seconds = $4, dead_letters = $5, last_seen = $6 WHERE id = $7`,
		e.EdgeID, e.Version, e.BacklogMessages, e.BacklogOldestSeconds, e.DeadLetters, micro(e.Seen), homeID)
	return err
}

func (l pgLC) edgeStates(ctx context.Context) (map[string]EdgeState, error) {
	out := map[string]EdgeState{}
	err := l.db.pool.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+edgeCols+`,
			(SELECT max(g.expires_at) FROM `+l.t.grace+` AS g WHERE g.home_id = h.id AND g.expires_at > $1)
			FROM `+l.t.homes+` AS h`, micro(l.now()))
		if err != nil {
			return err
		}
		var id string
		var e EdgeState
		var seen, grace *time.Time
		_, err = pgx.ForEachRow(rows, []any{&id, &e.EdgeID, &e.Version, &e.BacklogMessages, &e.BacklogOldestSeconds,
			&e.DeadLetters, &seen, &e.Revoked, &grace}, func() error {
			s := e
			s.Seen, s.GraceUntil = utcOrZero(seen), utcOrZero(grace)
			out[id] = s
			return nil
		})
		return err
	})
	return out, pgErr("edge states", err)
}

func utcOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// eraseRows runs one bounded delete, which returns the count it deleted,
// until it deletes fewer than EraseBatch rows.
func (l pgLC) eraseRows(ctx context.Context, table, query string, arg any) (int64, error) {
	var total int64
	for {
		var n int64
		err := l.db.pool.with(ctx, func(c *pgx.Conn) error { return c.QueryRow(ctx, query, arg).Scan(&n) })
		total += n
		if err != nil {
			return total, pgErr("erase "+table, err)
		}
		if n < EraseBatch {
			return total, nil
		}
	}
}

// pgHearthErase are the bounded deletes of a child's rows in hearth's schema.
var pgHearthErase = []struct{ table, query string }{
	{"app_screen_time", pgEraseByChild("app_screen_time")},
	{"screen_time", pgEraseByChild("screen_time")},
	{"locations", pgEraseByChild("locations")},
	{"site_access", pgEraseByChild("site_access")},
}

func pgEraseByChild(table string) string {
	return `WITH d AS (DELETE FROM ` + table + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM ` + table +
		` WHERE child = $1 LIMIT ` + batchText + `)) RETURNING 1) SELECT count(*) FROM d`
}

// RotateToken gives a home a fresh token; see Lifecycle.
func (s *Postgres) RotateToken(ctx context.Context, homeID string, grace time.Duration) (string, error) {
	return s.lc().rotate(ctx, homeID, grace)
}

// RevokeHome refuses a home's tokens; see Lifecycle.
func (s *Postgres) RevokeHome(ctx context.Context, homeID string) error {
	return s.lc().revoke(ctx, homeID)
}

// HomeByGraceToken finds the home of a previous token in its grace period; see Lifecycle.
func (s *Postgres) HomeByGraceToken(ctx context.Context, token string) (Home, error) {
	return s.lc().homeByGraceToken(ctx, token)
}

// RemoveHome erases a home's children with their data, then the home;
// children detached from it before are not its children and stay. See
// Lifecycle.
func (s *Postgres) RemoveHome(ctx context.Context, homeID string) (int64, error) {
	kids, err := s.lc().homeKids(ctx, homeID)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, k := range kids {
		n, err := s.EraseChild(ctx, k)
		total += n
		if err != nil && !errors.Is(err, ErrNotFound) {
			return total, err
		}
	}
	return total, s.lc().deleteHome(ctx, homeID)
}

// DetachChild takes a child out of its home and keeps its row and data
// (home_id NULL); see Lifecycle.
func (s *Postgres) DetachChild(ctx context.Context, homeID, hash string) error {
	return s.lc().execOne(ctx, "detach child", fmt.Sprintf("child %q in home %q", hash, homeID),
		`UPDATE children SET home_id = NULL WHERE home_id = $1 AND hash = $2`, homeID, hash)
}

// EraseChild deletes a child's data in bounded transactions, then the
// child, in a home or detached; see Lifecycle.
func (s *Postgres) EraseChild(ctx context.Context, hash string) (int64, error) {
	if _, ok, err := s.ChildHomes(ctx, hash); err != nil {
		return 0, err
	} else if !ok {
		return 0, fmt.Errorf("child %q: %w", hash, ErrNotFound)
	}
	l := s.lc()
	var total int64
	for _, e := range pgHearthErase {
		n, err := l.eraseRows(ctx, e.table, e.query, hash)
		total += n
		if err != nil {
			return total, err
		}
	}
	_, err := l.exec(ctx, "erase child", `DELETE FROM children WHERE hash = $1`, hash)
	return total, err
}

// SetChildName names a child; see Lifecycle.
func (s *Postgres) SetChildName(ctx context.Context, homeID, hash, name string) error {
	return s.lc().setName(ctx, homeID, hash, name)
}

// ChildNames returns a home's children's names; see Lifecycle.
func (s *Postgres) ChildNames(ctx context.Context, homeID string) (map[string]string, error) {
	return s.lc().names(ctx, homeID)
}

// RecordEdge keeps what a home's edge said of itself; see Lifecycle.
func (s *Postgres) RecordEdge(ctx context.Context, homeID string, e EdgeState) error {
	return s.lc().recordEdge(ctx, homeID, e)
}

// EdgeStates returns every home's edge and token state; see Lifecycle.
func (s *Postgres) EdgeStates(ctx context.Context) (map[string]EdgeState, error) {
	return s.lc().edgeStates(ctx)
}

// RotateToken gives a home a fresh token; see Lifecycle.
func (g *GuardianPostgres) RotateToken(ctx context.Context, homeID string, grace time.Duration) (string, error) {
	return g.lc().rotate(ctx, homeID, grace)
}

// RevokeHome refuses a home's tokens; see Lifecycle.
func (g *GuardianPostgres) RevokeHome(ctx context.Context, homeID string) error {
	return g.lc().revoke(ctx, homeID)
}

// HomeByGraceToken finds the home of a previous token in its grace period; see Lifecycle.
func (g *GuardianPostgres) HomeByGraceToken(ctx context.Context, token string) (Home, error) {
	return g.lc().homeByGraceToken(ctx, token)
}

// RemoveHome deletes a home and detaches its children, whose data stays
// with the dashboard's children; those in no other home are noted
// detached (DetachedChildren). See Lifecycle.
func (g *GuardianPostgres) RemoveHome(ctx context.Context, homeID string) (int64, error) {
	return 0, g.db.tx(ctx, "remove home", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, gaPGNoteHomeDetached, homeID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM hearth_homes WHERE id = $1`, homeID)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		}
		return err
	})
}

// DetachChild removes a child from a home and, when that was its last
// home, notes it detached under the name it had there
// (DetachedChildren); see Lifecycle.
func (g *GuardianPostgres) DetachChild(ctx context.Context, homeID, hash string) error {
	return g.db.tx(ctx, "detach child", pgx.TxOptions{}, func(tx pgx.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `DELETE FROM hearth_home_children WHERE home_id = $1 AND child_hash = $2 RETURNING name`, homeID, hash).Scan(&name)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("child %q in home %q: %w", hash, homeID, ErrNotFound)
		} else if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO hearth_detached_children (child_hash, name) SELECT $1, $2
			WHERE NOT EXISTS (SELECT 1 FROM hearth_home_children WHERE child_hash = $1)
			ON CONFLICT (child_hash) DO UPDATE SET name = excluded.name`, hash, name)
		return err
	})
}

// gaPGNoteHomeDetached notes detached the children of a home ($1) that
// are in no other home, before the home goes.
const gaPGNoteHomeDetached = `INSERT INTO hearth_detached_children (child_hash, name)
	SELECT c.child_hash, c.name FROM hearth_home_children AS c WHERE c.home_id = $1
	AND NOT EXISTS (SELECT 1 FROM hearth_home_children AS o WHERE o.child_hash = c.child_hash AND o.home_id <> c.home_id)
	ON CONFLICT (child_hash) DO UPDATE SET name = excluded.name`

// EraseChild deletes a child's rows from the dashboard's data tables and
// hearth's keys in bounded transactions, then detaches it from every
// home; accounts_child stays. See Lifecycle.
func (g *GuardianPostgres) EraseChild(ctx context.Context, hash string) (int64, error) {
	var id int64
	err := g.db.pool.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT id FROM accounts_child WHERE child_hash = $1`, hash).Scan(&id)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("child %q: %w", hash, ErrNotFound)
	} else if err != nil {
		return 0, pgErr("erase child", err)
	}
	l := g.lc()
	var total int64
	for _, e := range gaPGErase {
		n, err := l.eraseRows(ctx, e.table, e.query, id)
		total += n
		if err != nil {
			return total, err
		}
	}
	// One statement: the child leaves its homes and the detached list at once.
	_, err = l.exec(ctx, "erase child", `WITH h AS (DELETE FROM hearth_home_children WHERE child_hash = $1)
		DELETE FROM hearth_detached_children WHERE child_hash = $1`, hash)
	return total, err
}

// gaPGErase deletes a child's rows (by accounts_child id) as gaPGPrune
// deletes old ones.
var gaPGErase = []struct{ table, query string }{
	{"backend_appscreentime", `WITH d AS (DELETE FROM backend_appscreentime WHERE id IN (SELECT a.id FROM backend_appscreentime AS a
		JOIN backend_screentime AS s ON s.id = a.screen_time_id WHERE s.child_id = $1 LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_appscreentime WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`},
	{"backend_screentime", `WITH d AS (DELETE FROM backend_screentime WHERE id IN (SELECT s.id FROM backend_screentime AS s
		WHERE s.child_id = $1 AND NOT EXISTS (SELECT 1 FROM backend_appscreentime AS a WHERE a.screen_time_id = s.id) LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_screentime WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`},
	{"backend_locationhistory", `WITH d AS (DELETE FROM backend_locationhistory WHERE id IN (SELECT id FROM backend_locationhistory
		WHERE child_id = $1 LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_locationhistory WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`},
	{"backend_siteaccesslog", `WITH d AS (DELETE FROM backend_siteaccesslog WHERE id IN (SELECT id FROM backend_siteaccesslog
		WHERE child_id = $1 LIMIT 1000) RETURNING id),
		v AS (DELETE FROM hearth_siteaccesslog WHERE row_id IN (SELECT id FROM d)) SELECT count(*) FROM d`},
}

// SetChildName names a child in a home; see Lifecycle.
func (g *GuardianPostgres) SetChildName(ctx context.Context, homeID, hash, name string) error {
	return g.lc().setName(ctx, homeID, hash, name)
}

// ChildNames returns a home's children's names; see Lifecycle.
func (g *GuardianPostgres) ChildNames(ctx context.Context, homeID string) (map[string]string, error) {
	return g.lc().names(ctx, homeID)
}

// RecordEdge keeps what a home's edge said of itself; see Lifecycle.
func (g *GuardianPostgres) RecordEdge(ctx context.Context, homeID string, e EdgeState) error {
	return g.lc().recordEdge(ctx, homeID, e)
}

// EdgeStates returns every home's edge and token state; see Lifecycle.
func (g *GuardianPostgres) EdgeStates(ctx context.Context) (map[string]EdgeState, error) {
	return g.lc().edgeStates(ctx)
}

// DetachedChildren lists the children detached from their home; see
// Lifecycle.
func (s *Postgres) DetachedChildren(ctx context.Context, after string, limit int) ([]DetachedChild, bool, error) {
	return pgDetached(ctx, s.pool, `SELECT c.hash, c.name,
		(SELECT max(ts) FROM locations WHERE child = c.hash),
		(SELECT max(ts) FROM site_access WHERE child = c.hash),
		(SELECT max(date)::text FROM screen_time WHERE child = c.hash)
		FROM children AS c WHERE c.home_id IS NULL AND c.hash COLLATE "C" > $1 ORDER BY c.hash COLLATE "C" LIMIT $2`, after, limit)
}

// DetachedChildren lists the children hearth took out of their last home;
// see Lifecycle.
func (g *GuardianPostgres) DetachedChildren(ctx context.Context, after string, limit int) ([]DetachedChild, bool, error) {
	return pgDetached(ctx, g.db.pool, `SELECT d.child_hash, d.name,
		(SELECT max(ts) FROM hearth_locationhistory WHERE child_id = a.id),
		(SELECT max(ts) FROM hearth_siteaccesslog WHERE child_id = a.id),
		(SELECT max(date)::text FROM backend_screentime WHERE child_id = a.id)
		FROM hearth_detached_children AS d JOIN accounts_child AS a ON a.child_hash = d.child_hash
		WHERE d.child_hash COLLATE "C" > $1 AND NOT EXISTS (SELECT 1 FROM hearth_home_children AS h WHERE h.child_hash = d.child_hash)
		ORDER BY d.child_hash COLLATE "C" LIMIT $2`, after, limit)
}

// pgDetached runs query, which selects (hash, name, newest fix time,
// newest visit time, newest day) of children after a hash with a limit,
// one row beyond limit to tell whether there are more.
func pgDetached(ctx context.Context, pool *pgPool, query, after string, limit int) ([]DetachedChild, bool, error) {
	limit = detachedLimit(limit)
	out := []DetachedChild{}
	var d DetachedChild
	var loc, site *time.Time
	var day *string
	err := pgEachRow(ctx, pool, query, []any{after, limit + 1}, []any{&d.Hash, &d.Name, &loc, &site, &day}, func() {
		k := DetachedChild{Hash: d.Hash, Name: d.Name}
		for _, t := range []*time.Time{loc, site} {
			if t != nil && t.After(k.LastData) {
				k.LastData = t.UTC()
			}
		}
		if day != nil {
			k.LastDay = *day
		}
		out = append(out, k)
	})
	if err != nil {
		return nil, false, pgErr("list detached children", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
