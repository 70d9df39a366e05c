package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// sqliteLC is the lifecycle on SQLite, for either schema: the same
// statements over that schema's tables and time text.
type sqliteLC struct {
	db       *SQLite
	t        lcTables
	homeCols string // sqliteHomeCols or gaSQLiteHomeCols
	fmt      func(time.Time) string
	parse    func(string) (time.Time, error)
	now      func() time.Time
}

func (s *SQLite) lc() sqliteLC {
	return sqliteLC{db: s, t: hearthTables, homeCols: sqliteHomeCols, fmt: fmtTS, parse: parseTS, now: s.opts.Now}
}

func (g *GuardianSQLite) lc() sqliteLC {
	return sqliteLC{db: g.db, t: guardianTables, homeCols: gaSQLiteHomeCols, fmt: fmtDjango, parse: parseDjango, now: g.opts.Now}
}

// tx runs fn in a write transaction and commits it.
func (l sqliteLC) tx(ctx context.Context, op string, fn func(*sql.Tx) error) error {
	tx, err := l.db.w.BeginTx(ctx, nil)
	if err != nil {
		return sqliteErr(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return sqliteErr(op, err)
	}
	return sqliteErr(op, tx.Commit())
}

func (l sqliteLC) rotate(ctx context.Context, homeID string, grace time.Duration) (string, error) {
	token, now := newToken(), l.now()
	err := l.tx(ctx, "rotate token", func(tx *sql.Tx) error {
		var old string
		var revoked bool
		err := tx.QueryRowContext(ctx, `SELECT token_hash, revoked_at IS NOT NULL FROM `+l.t.homes+` WHERE id = ?`, homeID).Scan(&old, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		} else if err != nil {
			return err
		}
		if err := l.endGrace(ctx, tx, homeID, grace, now); err != nil {
			return err
		}
		if grace > 0 && !revoked {
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+l.t.grace+` (token_hash, home_id, expires_at) VALUES (?, ?, ?)`,
				old, homeID, l.fmt(now.Add(grace))); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE `+l.t.homes+` SET token_hash = ?, revoked_at = NULL WHERE id = ?`, hashToken(token), homeID)
		return err
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// endGrace deletes the home's grace tokens: all of them for an unplanned
// rotation (grace 0: a leak), the expired ones otherwise.
func (l sqliteLC) endGrace(ctx context.Context, tx *sql.Tx, homeID string, grace time.Duration, now time.Time) error {
	q, args := `DELETE FROM `+l.t.grace+` WHERE home_id = ?`, []any{homeID}
	if grace > 0 {
		q, args = q+` AND expires_at <= ?`, append(args, l.fmt(now))
	}
	_, err := tx.ExecContext(ctx, q, args...)
	return err
}

func (l sqliteLC) revoke(ctx context.Context, homeID string) error {
	now := l.now()
	return l.tx(ctx, "revoke home", func(tx *sql.Tx) error {
		// The token hash of a token nobody was given: no token matches.
		res, err := tx.ExecContext(ctx, `UPDATE `+l.t.homes+` SET token_hash = ?, revoked_at = ? WHERE id = ?`,
			hashToken(newToken()), l.fmt(now), homeID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		}
		return l.endGrace(ctx, tx, homeID, 0, now)
	})
}

func (l sqliteLC) homeByGraceToken(ctx context.Context, token string) (Home, error) {
	row := l.db.r.QueryRowContext(ctx, `SELECT `+l.homeCols+` FROM `+l.t.grace+` AS g JOIN `+l.t.homes+` AS h ON h.id = g.home_id
		WHERE g.token_hash = ? AND g.expires_at > ? AND h.revoked_at IS NULL`, hashToken(token), l.fmt(l.now()))
	h, err := scanSQLiteHomeTimes(row, l.parse)
	if errors.Is(err, sql.ErrNoRows) {
		return Home{}, ErrUnauthorized
	}
	return h, sqliteErr("find home by grace token", err)
}

// deleteHome deletes the home row; its links, readers and grace tokens
// cascade.
func (l sqliteLC) deleteHome(ctx context.Context, homeID string) error {
	return l.tx(ctx, "remove home", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+l.t.homes+` WHERE id = ?`, homeID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		}
		return nil
	})
}

// homeKids returns the hashes of a home's children; ErrNotFound for an
// unknown home.
func (l sqliteLC) homeKids(ctx context.Context, homeID string) ([]string, error) {
	return sqliteHomeChildren(ctx, l.db.r, `SELECT c.`+l.t.kidsHash+` FROM `+l.t.homes+` AS h LEFT JOIN `+l.t.kids+
		` AS c ON c.`+l.t.kidsHome+` = h.id WHERE h.id = ? ORDER BY 1`, homeID)
}

func (l sqliteLC) setName(ctx context.Context, homeID, hash, name string) error {
	if err := CheckChildName(name); err != nil {
		return err
	}
	return l.tx(ctx, "name child", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE `+l.t.kids+` SET name = ? WHERE `+l.t.kidsHome+` = ? AND `+l.t.kidsHash+` = ?`, name, homeID, hash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("child %q in home %q: %w", hash, homeID, ErrNotFound)
		}
		return nil
	})
}

func (l sqliteLC) names(ctx context.Context, homeID string) (map[string]string, error) {
	rows, err := l.db.r.QueryContext(ctx, `SELECT `+l.t.kidsHash+`, name FROM `+l.t.kids+` WHERE `+l.t.kidsHome+` = ? AND name <> ''`, homeID)
	if err != nil {
		return nil, sqliteErr("child names", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var h, n string
		if err := rows.Scan(&h, &n); err != nil {
			return nil, sqliteErr("child names", err)
		}
		out[h] = n
	}
	return out, sqliteErr("child names", rows.Err())
}

func (l sqliteLC) recordEdge(ctx context.Context, homeID string, e EdgeState) error {
	return l.tx(ctx, "record edge", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE `+l.t.homes+` SET edge_id = ?, edge_version = ?, backlog_messages = ?,
			backlog_oldest_seconds = ?, dead_letters = ?, last_seen = ? WHERE id = ?`,
			e.EdgeID, e.Version, e.BacklogMessages, e.BacklogOldestSeconds, e.DeadLetters, l.fmt(e.Seen), homeID)
		return err
	})
}

func (l sqliteLC) edgeStates(ctx context.Context) (map[string]EdgeState, error) {
	rows, err := l.db.r.QueryContext(ctx, `SELECT `+edgeCols+`,
		(SELECT max(g.expires_at) FROM `+l.t.grace+` AS g WHERE g.home_id = h.id AND g.expires_at > ?)
		FROM `+l.t.homes+` AS h`, l.fmt(l.now()))
	if err != nil {
		return nil, sqliteErr("edge states", err)
	}
	defer rows.Close()
	out := map[string]EdgeState{}
	for rows.Next() {
		var id string
		var e EdgeState
		var seen, grace sql.NullString
		if err := rows.Scan(&id, &e.EdgeID, &e.Version, &e.BacklogMessages, &e.BacklogOldestSeconds, &e.DeadLetters,
			&seen, &e.Revoked, &grace); err != nil {
			return nil, sqliteErr("edge states", err)
		}
		if e.Seen, err = l.parseNull(seen); err == nil {
			e.GraceUntil, err = l.parseNull(grace)
		}
		if err != nil {
			return nil, sqliteErr("edge states", err)
		}
		out[id] = e
	}
	return out, sqliteErr("edge states", rows.Err())
}

func (l sqliteLC) parseNull(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return l.parse(s.String)
}

// eraseRows runs one bounded delete until it deletes fewer than
// EraseBatch rows, each run its own transaction.
func (l sqliteLC) eraseRows(ctx context.Context, table, query string, args ...any) (int64, error) {
	var total int64
	for {
		var n int64
		err := l.tx(ctx, "erase "+table, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, query, args...)
			if err == nil {
				n, err = res.RowsAffected()
			}
			return err
		})
		total += n
		if err != nil || n < EraseBatch {
			return total, err
		}
	}
}

var batchText = strconv.Itoa(EraseBatch)

// hearthErase are the bounded deletes of a child's rows in hearth's
// schema (its tables have no rowid: a row is named by its key).
var hearthErase = []struct{ table, query string }{
	{"app_screen_time", `DELETE FROM app_screen_time WHERE child = ?1 AND (date, app, hour) IN
		(SELECT date, app, hour FROM app_screen_time WHERE child = ?1 LIMIT ` + batchText + `)`},
	{"screen_time", `DELETE FROM screen_time WHERE child = ?1 AND date IN
		(SELECT date FROM screen_time WHERE child = ?1 LIMIT ` + batchText + `)`},
	{"locations", `DELETE FROM locations WHERE child = ?1 AND ts IN
		(SELECT ts FROM locations WHERE child = ?1 LIMIT ` + batchText + `)`},
	{"site_access", `DELETE FROM site_access WHERE child = ?1 AND (ts, url) IN
		(SELECT ts, url FROM site_access WHERE child = ?1 LIMIT ` + batchText + `)`},
}

// RotateToken gives a home a fresh token; see Lifecycle.
func (s *SQLite) RotateToken(ctx context.Context, homeID string, grace time.Duration) (string, error) {
	return s.lc().rotate(ctx, homeID, grace)
}

// RevokeHome refuses a home's tokens; see Lifecycle.
func (s *SQLite) RevokeHome(ctx context.Context, homeID string) error {
	return s.lc().revoke(ctx, homeID)
}

// HomeByGraceToken finds the home of a previous token in its grace period; see Lifecycle.
func (s *SQLite) HomeByGraceToken(ctx context.Context, token string) (Home, error) {
	return s.lc().homeByGraceToken(ctx, token)
}

// RemoveHome erases a home's children with their data, then the home;
// children detached from it before are not its children and stay. See
// Lifecycle.
func (s *SQLite) RemoveHome(ctx context.Context, homeID string) (int64, error) {
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
func (s *SQLite) DetachChild(ctx context.Context, homeID, hash string) error {
	return s.lc().tx(ctx, "detach child", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE children SET home_id = NULL WHERE home_id = ? AND hash = ?`, homeID, hash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("child %q in home %q: %w", hash, homeID, ErrNotFound)
		}
		return nil
	})
}

// EraseChild deletes a child's data in bounded transactions, then the
// child, in a home or detached; see Lifecycle.
func (s *SQLite) EraseChild(ctx context.Context, hash string) (int64, error) {
	if _, ok, err := s.ChildHomes(ctx, hash); err != nil {
		return 0, err
	} else if !ok {
		return 0, fmt.Errorf("child %q: %w", hash, ErrNotFound)
	}
	l := s.lc()
	var total int64
	for _, e := range hearthErase {
		n, err := l.eraseRows(ctx, e.table, e.query, hash)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, l.tx(ctx, "erase child", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM children WHERE hash = ?`, hash)
		return err
	})
}

// SetChildName names a child; see Lifecycle.
func (s *SQLite) SetChildName(ctx context.Context, homeID, hash, name string) error {
	return s.lc().setName(ctx, homeID, hash, name)
}

// ChildNames returns a home's children's names; see Lifecycle.
func (s *SQLite) ChildNames(ctx context.Context, homeID string) (map[string]string, error) {
	return s.lc().names(ctx, homeID)
}

// RecordEdge keeps what a home's edge said of itself; see Lifecycle.
func (s *SQLite) RecordEdge(ctx context.Context, homeID string, e EdgeState) error {
	return s.lc().recordEdge(ctx, homeID, e)
}

// EdgeStates returns every home's edge and token state; see Lifecycle.
func (s *SQLite) EdgeStates(ctx context.Context) (map[string]EdgeState, error) {
	return s.lc().edgeStates(ctx)
}

// RotateToken gives a home a fresh token; see Lifecycle.
func (g *GuardianSQLite) RotateToken(ctx context.Context, homeID string, grace time.Duration) (string, error) {
	return g.lc().rotate(ctx, homeID, grace)
}

// RevokeHome refuses a home's tokens; see Lifecycle.
func (g *GuardianSQLite) RevokeHome(ctx context.Context, homeID string) error {
	return g.lc().revoke(ctx, homeID)
}

// HomeByGraceToken finds the home of a previous token in its grace period; see Lifecycle.
func (g *GuardianSQLite) HomeByGraceToken(ctx context.Context, token string) (Home, error) {
	return g.lc().homeByGraceToken(ctx, token)
}

// RemoveHome deletes a home and detaches its children, whose data stays
// with the dashboard's children; those in no other home are noted
// detached (DetachedChildren). See Lifecycle.
func (g *GuardianSQLite) RemoveHome(ctx context.Context, homeID string) (int64, error) {
	return 0, g.lc().tx(ctx, "remove home", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, gaSQLiteNoteHomeDetached, homeID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM hearth_homes WHERE id = ?`, homeID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("home %q: %w", homeID, ErrNotFound)
		}
		return nil
	})
}

// DetachChild removes a child from a home and, when that was its last
// home, notes it detached under the name it had there
// (DetachedChildren); see Lifecycle.
func (g *GuardianSQLite) DetachChild(ctx context.Context, homeID, hash string) error {
	return g.lc().tx(ctx, "detach child", func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, `SELECT name FROM hearth_home_children WHERE home_id = ? AND child_hash = ?`, homeID, hash).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("child %q in home %q: %w", hash, homeID, ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM hearth_home_children WHERE home_id = ? AND child_hash = ?`, homeID, hash); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO hearth_detached_children (child_hash, name) SELECT ?1, ?2
			WHERE NOT EXISTS (SELECT 1 FROM hearth_home_children WHERE child_hash = ?1)
			ON CONFLICT (child_hash) DO UPDATE SET name = excluded.name`, hash, name)
		return err
	})
}

// gaSQLiteNoteHomeDetached notes detached the children of a home (?1)
// that are in no other home, before the home goes.
const gaSQLiteNoteHomeDetached = `INSERT INTO hearth_detached_children (child_hash, name)
	SELECT c.child_hash, c.name FROM hearth_home_children AS c WHERE c.home_id = ?1
	AND NOT EXISTS (SELECT 1 FROM hearth_home_children AS o WHERE o.child_hash = c.child_hash AND o.home_id <> c.home_id)
	ON CONFLICT (child_hash) DO UPDATE SET name = excluded.name`

// EraseChild deletes a child's rows from the dashboard's data tables and
// hearth's keys in bounded transactions, then detaches it from every
// home; accounts_child stays. See Lifecycle.
func (g *GuardianSQLite) EraseChild(ctx context.Context, hash string) (int64, error) {
	var id int64
	err := g.db.r.QueryRowContext(ctx, `SELECT id FROM accounts_child WHERE child_hash = ?`, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("child %q: %w", hash, ErrNotFound)
	} else if err != nil {
		return 0, sqliteErr("erase child", err)
	}
	var total int64
	for _, st := range gaSQLiteErase {
		for {
			n, err := g.pruneOnce(ctx, st, strconv.FormatInt(id, 10))
			total += n
			if err != nil {
				return total, sqliteErr("erase "+st.table, err)
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return total, g.lc().tx(ctx, "erase child", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM hearth_home_children WHERE child_hash = ?`, hash); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM hearth_detached_children WHERE child_hash = ?`, hash)
		return err
	})
}

// gaSQLiteErase selects a child's rows (by accounts_child id) as
// gaSQLitePrune selects old ones.
var gaSQLiteErase = []gaPruneStep{
	{"backend_appscreentime", `SELECT a.id FROM backend_appscreentime AS a JOIN backend_screentime AS s ON s.id = a.screen_time_id WHERE s.child_id = ? LIMIT 1000`, "hearth_appscreentime", false},
	{"backend_screentime", `SELECT s.id FROM backend_screentime AS s WHERE s.child_id = ? AND NOT EXISTS (SELECT 1 FROM backend_appscreentime AS a WHERE a.screen_time_id = s.id) LIMIT 1000`, "hearth_screentime", false},
	{"backend_locationhistory", `SELECT id FROM backend_locationhistory WHERE child_id = ? LIMIT 1000`, "hearth_locationhistory", false},
	{"backend_siteaccesslog", `SELECT id FROM backend_siteaccesslog WHERE child_id = ? LIMIT 1000`, "hearth_siteaccesslog", false},
}

// SetChildName names a child in a home; see Lifecycle.
func (g *GuardianSQLite) SetChildName(ctx context.Context, homeID, hash, name string) error {
	return g.lc().setName(ctx, homeID, hash, name)
}

// ChildNames returns a home's children's names; see Lifecycle.
func (g *GuardianSQLite) ChildNames(ctx context.Context, homeID string) (map[string]string, error) {
	return g.lc().names(ctx, homeID)
}

// RecordEdge keeps what a home's edge said of itself; see Lifecycle.
func (g *GuardianSQLite) RecordEdge(ctx context.Context, homeID string, e EdgeState) error {
	return g.lc().recordEdge(ctx, homeID, e)
}

// EdgeStates returns every home's edge and token state; see Lifecycle.
func (g *GuardianSQLite) EdgeStates(ctx context.Context) (map[string]EdgeState, error) {
	return g.lc().edgeStates(ctx)
}

// DetachedChildren lists the children detached from their home; see
// Lifecycle.
func (s *SQLite) DetachedChildren(ctx context.Context, after string, limit int) ([]DetachedChild, bool, error) {
	return sqliteDetached(ctx, s.r, parseTS, `SELECT c.hash, c.name,
		(SELECT max(ts) FROM locations WHERE child = c.hash),
		(SELECT max(ts) FROM site_access WHERE child = c.hash),
		(SELECT max(date) FROM screen_time WHERE child = c.hash)
		FROM children AS c WHERE c.home_id IS NULL AND c.hash > ? ORDER BY c.hash LIMIT ?`, after, limit)
}

// DetachedChildren lists the children hearth took out of their last home;
// see Lifecycle.
func (g *GuardianSQLite) DetachedChildren(ctx context.Context, after string, limit int) ([]DetachedChild, bool, error) {
	return sqliteDetached(ctx, g.db.r, parseDjango, `SELECT d.child_hash, d.name,
		(SELECT max(ts) FROM hearth_locationhistory WHERE child_id = a.id),
		(SELECT max(ts) FROM hearth_siteaccesslog WHERE child_id = a.id),
		(SELECT substr(max(date), 1, 10) FROM backend_screentime WHERE child_id = a.id)
		FROM hearth_detached_children AS d JOIN accounts_child AS a ON a.child_hash = d.child_hash
		WHERE d.child_hash > ? AND NOT EXISTS (SELECT 1 FROM hearth_home_children AS h WHERE h.child_hash = d.child_hash)
		ORDER BY d.child_hash LIMIT ?`, after, limit)
}

// sqliteDetached runs query, which selects (hash, name, newest fix time,
// newest visit time, newest day) of children after a hash with a limit,
// one row beyond limit to tell whether there are more.
func sqliteDetached(ctx context.Context, db *sql.DB, parse func(string) (time.Time, error), query, after string, limit int) ([]DetachedChild, bool, error) {
	limit = detachedLimit(limit)
	rows, err := db.QueryContext(ctx, query, after, limit+1)
	if err != nil {
		return nil, false, sqliteErr("list detached children", err)
	}
	defer rows.Close()
	out := []DetachedChild{}
	for rows.Next() {
		var d DetachedChild
		var loc, site, day sql.NullString
		if err := rows.Scan(&d.Hash, &d.Name, &loc, &site, &day); err != nil {
			return nil, false, sqliteErr("list detached children", err)
		}
		for _, ts := range []sql.NullString{loc, site} {
			t, err := parseNullTime(ts, parse)
			if err != nil {
				return nil, false, sqliteErr("list detached children", err)
			}
			if t.After(d.LastData) {
				d.LastData = t
			}
		}
		d.LastDay = day.String
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, false, sqliteErr("list detached children", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

func parseNullTime(s sql.NullString, parse func(string) (time.Time, error)) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parse(s.String)
}
