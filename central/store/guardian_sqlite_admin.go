package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/guardianai/hearth"
)

// AddHome creates a home in hearth_homes; see Store.
func (g *GuardianSQLite) AddHome(ctx context.Context, name string) (string, string, error) {
	if err := checkHomeName(name); err != nil {
		return "", "", err
	}
	id, token := newHomeID(), newToken()
	_, err := g.db.w.ExecContext(ctx, `INSERT INTO hearth_homes (id, name, token_hash, created_at) VALUES (?, ?, ?, ?)`,
		id, name, hashToken(token), fmtDjango(g.opts.Now()))
	if err != nil {
		return "", "", sqliteErr("add home", err)
	}
	return id, token, nil
}

const gaSQLiteHomeCols = `h.id, h.name, h.created_at, h.clock_offset_ms, h.last_seen,
	(SELECT count(*) FROM hearth_home_children AS c WHERE c.home_id = h.id)`

// ListHomes returns every home; see Store.
func (g *GuardianSQLite) ListHomes(ctx context.Context) ([]Home, error) {
	rows, err := g.db.r.QueryContext(ctx, `SELECT `+gaSQLiteHomeCols+` FROM hearth_homes AS h ORDER BY h.created_at, h.id`)
	if err != nil {
		return nil, sqliteErr("list homes", err)
	}
	defer rows.Close()
	homes := []Home{}
	for rows.Next() {
		h, err := scanGASQLiteHome(rows)
		if err != nil {
			return nil, sqliteErr("list homes", err)
		}
		homes = append(homes, h)
	}
	return homes, sqliteErr("list homes", rows.Err())
}

// HomeByToken finds the home of a token; see Store.
func (g *GuardianSQLite) HomeByToken(ctx context.Context, token string) (Home, error) {
	row := g.db.r.QueryRowContext(ctx, `SELECT `+gaSQLiteHomeCols+` FROM hearth_homes AS h WHERE h.token_hash = ?`, hashToken(token))
	h, err := scanGASQLiteHome(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Home{}, ErrUnauthorized
	}
	return h, sqliteErr("find home by token", err)
}

func scanGASQLiteHome(row interface{ Scan(...any) error }) (Home, error) {
	return scanSQLiteHomeTimes(row, parseDjango)
}

// AddReader creates a reader token; see Store.
func (g *GuardianSQLite) AddReader(ctx context.Context, homeID string) (string, string, error) {
	id, token := newReaderID(), newToken()
	res, err := g.db.w.ExecContext(ctx, `INSERT INTO hearth_readers (id, home_id, token_hash, created_at)
		SELECT ?, id, ?, ? FROM hearth_homes WHERE id = ?`, id, hashToken(token), fmtDjango(g.opts.Now()), homeID)
	if err != nil {
		return "", "", sqliteErr("add reader", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", "", fmt.Errorf("add reader: home %q: %w", homeID, ErrNotFound)
	}
	return id, token, nil
}

// ReaderByToken finds the home of a reader token; see Store.
func (g *GuardianSQLite) ReaderByToken(ctx context.Context, token string) (string, error) {
	var home string
	err := g.db.r.QueryRowContext(ctx, `SELECT home_id FROM hearth_readers WHERE token_hash = ?`, hashToken(token)).Scan(&home)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnauthorized
	}
	return home, sqliteErr("find reader by token", err)
}

// RecordClockOffset stores a home's clock offset; see Store.
func (g *GuardianSQLite) RecordClockOffset(ctx context.Context, homeID string, offset time.Duration, at time.Time) error {
	res, err := g.db.w.ExecContext(ctx, `UPDATE hearth_homes SET clock_offset_ms = ?, last_seen = ? WHERE id = ?`,
		offset.Milliseconds(), fmtDjango(at), homeID)
	if err != nil {
		return sqliteErr("record clock offset", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record clock offset: home %q: %w", homeID, ErrNotFound)
	}
	return nil
}

// AddChild attaches an existing GuardianAI child to a home; see AttachChild.
func (g *GuardianSQLite) AddChild(ctx context.Context, homeID, hash string) (string, error) {
	if _, err := g.AttachChild(ctx, homeID, hash, ""); err != nil {
		return "", err
	}
	return hash, nil
}

// AttachChild attaches the accounts_child row of hash to a home, under
// name (its first_name when ""), and returns the name. The child must
// exist (ErrUnknownChild: hearth never creates GuardianAI children, so
// there is no fresh hash either); ErrNotFound for an unknown home,
// ErrExists when it is attached to that home already.
func (g *GuardianSQLite) AttachChild(ctx context.Context, homeID, hash, name string) (string, error) {
	if err := checkAttach(hash, name); err != nil {
		return "", err
	}
	tx, err := g.db.w.BeginTx(ctx, nil)
	if err != nil {
		return "", sqliteErr("attach child", err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM hearth_homes WHERE id = ?`, homeID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("attach child: home %q: %w", homeID, ErrNotFound)
	} else if err != nil {
		return "", sqliteErr("attach child", err)
	}
	var first string
	err = tx.QueryRowContext(ctx, `SELECT first_name FROM accounts_child WHERE child_hash = ?`, hash).Scan(&first)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("attach child: %w: no accounts_child row has child_hash %q; create the child in the dashboard first", ErrUnknownChild, hash)
	} else if err != nil {
		return "", sqliteErr("attach child", err)
	}
	if name == "" {
		name = first
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO hearth_home_children (home_id, child_hash, name, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, homeID, hash, name, fmtDjango(g.opts.Now()))
	if err != nil {
		return "", sqliteErr("attach child", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", fmt.Errorf("attach child: %w: the child is in home %q already", ErrExists, homeID)
	}
	// In a home again: no longer detached (DetachedChildren).
	if _, err := tx.ExecContext(ctx, `DELETE FROM hearth_detached_children WHERE child_hash = ?`, hash); err != nil {
		return "", sqliteErr("attach child", err)
	}
	return name, sqliteErr("attach child", tx.Commit())
}

// checkAttach validates AttachChild's arguments.
func checkAttach(hash, name string) error {
	if hash == "" {
		return fmt.Errorf("%w: the GuardianAI schema needs the child's hash (accounts_child.child_hash): hearth does not create children there", ErrInvalid)
	}
	if err := checkChildHash(hash); err != nil {
		return err
	}
	if len(name) > 200 {
		return fmt.Errorf("%w: child name must be at most 200 characters", ErrInvalid)
	}
	return nil
}

// Children lists the children attached to a home that GuardianAI still
// has; see Store.
func (g *GuardianSQLite) Children(ctx context.Context, homeID string) ([]string, error) {
	return sqliteHomeChildren(ctx, g.db.r, `SELECT c.child_hash FROM hearth_homes AS h
		LEFT JOIN (hearth_home_children AS c JOIN accounts_child AS a ON a.child_hash = c.child_hash) ON c.home_id = h.id
		WHERE h.id = ? ORDER BY c.child_hash`, homeID)
}

// ChildHome returns the first of a child's homes ("" when it has none);
// ok for every accounts_child row. See ChildHomes.
func (g *GuardianSQLite) ChildHome(ctx context.Context, hash string) (string, bool, error) {
	homes, ok, err := g.ChildHomes(ctx, hash)
	if !ok || err != nil || len(homes) == 0 {
		return "", ok, err
	}
	return homes[0], true, nil
}

// ChildHomes returns a child's homes; see Store.
func (g *GuardianSQLite) ChildHomes(ctx context.Context, hash string) ([]string, bool, error) {
	rows, err := g.db.r.QueryContext(ctx, `SELECT h.home_id FROM accounts_child AS a
		LEFT JOIN hearth_home_children AS h ON h.child_hash = a.child_hash WHERE a.child_hash = ? ORDER BY h.home_id`, hash)
	if err != nil {
		return nil, false, sqliteErr("look up child", err)
	}
	defer rows.Close()
	known := false
	homes := []string{}
	for rows.Next() {
		known = true
		var h sql.NullString
		if err := rows.Scan(&h); err != nil {
			return nil, false, sqliteErr("look up child", err)
		}
		if h.Valid {
			homes = append(homes, h.String)
		}
	}
	return homes, known, sqliteErr("look up child", rows.Err())
}

// gaStatsSQL counts what Stats reports, in the Django tables (children:
// every accounts_child row, since each may send).
const gaStatsSQL = `SELECT (SELECT count(*) FROM hearth_homes), (SELECT count(*) FROM accounts_child),
	(SELECT count(*) FROM backend_screentime), (SELECT count(*) FROM backend_appscreentime),
	(SELECT count(*) FROM backend_locationhistory), (SELECT count(*) FROM backend_siteaccesslog)`

// Stats counts rows per table; see Store.
func (g *GuardianSQLite) Stats(ctx context.Context) (map[string]int64, error) {
	var h, c, st, ast, l, sa int64
	if err := g.db.r.QueryRowContext(ctx, gaStatsSQL).Scan(&h, &c, &st, &ast, &l, &sa); err != nil {
		return nil, sqliteErr("stats", err)
	}
	return statsMap(h, c, st, ast, l, sa), nil
}

// ScreenTime reads a child's days from the Django tables; see Store.
func (g *GuardianSQLite) ScreenTime(ctx context.Context, child, from, to string) ([]ScreenTimeDay, error) {
	return sqliteScreenTime(ctx, g.db.r, parseDjango, `SELECT substr(s.date, 1, 10), s.total_screen_time, coalesce(v.received_at, s.updated)
		FROM backend_screentime AS s JOIN accounts_child AS c ON c.id = s.child_id
		LEFT JOIN hearth_screentime AS v ON v.row_id = s.id
		WHERE c.child_hash = ? AND s.date BETWEEN ? AND ? ORDER BY s.date`,
		`SELECT substr(s.date, 1, 10), a.domain, h.hour, h.seconds
		FROM backend_appscreentime AS h JOIN backend_screentime AS s ON s.id = h.screen_time_id
		JOIN accounts_child AS c ON c.id = s.child_id JOIN backend_app AS a ON a.id = h.app_id
		WHERE c.child_hash = ? AND s.date BETWEEN ? AND ? ORDER BY s.date, a.domain, h.hour`, child, from, to)
}

// Locations reads a child's fixes, one per timestamp (the row hearth
// keeps; duplicates the seed left are not read); see Store.
func (g *GuardianSQLite) Locations(ctx context.Context, child string, from, to time.Time) ([]hearth.Location, error) {
	return sqliteLocPage(ctx, g.db.r, `SELECT k.ts, l.latitude, l.longitude
		FROM hearth_locationhistory AS k JOIN accounts_child AS c ON c.id = k.child_id
		JOIN backend_locationhistory AS l ON l.id = k.row_id
		WHERE c.child_hash = ? AND k.ts >= ? AND k.ts <= ? ORDER BY k.ts`, parseDjango, child, fmtDjango(ceilMicro(from)), fmtDjango(to))
}

// SiteAccess reads a child's visits, one per key; see Store.
func (g *GuardianSQLite) SiteAccess(ctx context.Context, child string, from, to time.Time) ([]hearth.SiteVisit, error) {
	return sqliteSitePage(ctx, g.db.r, `SELECT k.ts, s.url, s.accessed
		FROM hearth_siteaccesslog AS k JOIN accounts_child AS c ON c.id = k.child_id
		JOIN backend_siteaccesslog AS s ON s.id = k.row_id
		WHERE c.child_hash = ? AND k.ts >= ? AND k.ts <= ? ORDER BY k.ts, k.url`, parseDjango, child, fmtDjango(ceilMicro(from)), fmtDjango(to))
}

// pruneBatch is how many rows one prune transaction deletes: small, so
// that no write of hearth's holds SQLite's lock near Django's 5 s busy
// timeout.
const pruneBatch = 1000

// Prune deletes data older than before from the Django tables and hearth's
// keys, in transactions of at most pruneBatch rows each,
// backend_appscreentime before backend_screentime (its rows point there);
// see Store.
func (g *GuardianSQLite) Prune(ctx context.Context, before time.Time) (int64, error) {
	day, ts := pruneDay(before), fmtDjango(ceilMicro(before))
	var total int64
	for _, st := range gaSQLitePrune {
		for {
			n, err := g.pruneOnce(ctx, st, st.arg(day, ts))
			total += n
			if err != nil {
				return total, sqliteErr("prune "+st.table, err)
			}
			if n < pruneBatch {
				break
			}
		}
	}
	return total, g.lc().pruneMessages(ctx)
}

// gaPruneStep deletes one table's old rows: ids selects up to pruneBatch
// of them; the version or key rows of those ids go too.
type gaPruneStep struct {
	table, ids, keys string
	byDay            bool
}

func (p gaPruneStep) arg(day, ts string) string {
	if p.byDay {
		return day
	}
	return ts
}

var gaSQLitePrune = []gaPruneStep{
	{"backend_appscreentime", `SELECT a.id FROM backend_appscreentime AS a JOIN backend_screentime AS s ON s.id = a.screen_time_id WHERE s.date < ? LIMIT 1000`, "hearth_appscreentime", true},
	{"backend_screentime", `SELECT s.id FROM backend_screentime AS s WHERE s.date < ? AND NOT EXISTS (SELECT 1 FROM backend_appscreentime AS a WHERE a.screen_time_id = s.id) LIMIT 1000`, "hearth_screentime", true},
	{"backend_locationhistory", `SELECT id FROM backend_locationhistory WHERE timestamp < ? LIMIT 1000`, "hearth_locationhistory", false},
	{"backend_siteaccesslog", `SELECT id FROM backend_siteaccesslog WHERE timestamp < ? LIMIT 1000`, "hearth_siteaccesslog", false},
}

// pruneOnce deletes one batch of a table's old rows in one transaction.
func (g *GuardianSQLite) pruneOnce(ctx context.Context, st gaPruneStep, arg string) (int64, error) {
	tx, err := g.db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, st.ids, arg)
	if err != nil {
		return 0, err
	}
	var b jsonArray
	n := int64(0)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		b.row().int(id)
		n++
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil || n == 0 {
		return 0, err
	}
	ids := string(b.done())
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+st.table+` WHERE id IN (SELECT value->>0 FROM json_each(?))`, ids); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+st.keys+` WHERE row_id IN (SELECT value->>0 FROM json_each(?))`, ids); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// ProbeWrite rewrites hearth's heartbeat row; see Store.
func (g *GuardianSQLite) ProbeWrite(ctx context.Context) error {
	return g.db.probe(ctx, `INSERT INTO hearth_heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at`, fmtDjango(g.opts.Now()))
}

// Apps lists the dashboard's backend_app rows, by domain.
func (g *GuardianSQLite) Apps(ctx context.Context) ([]App, error) {
	rows, err := g.db.r.QueryContext(ctx, appsSQL)
	if err != nil {
		return nil, sqliteErr("list apps", err)
	}
	defer rows.Close()
	out := []App{}
	for rows.Next() {
		var a App
		if err := rows.Scan(&a.Domain, &a.Name, &a.IconURL); err != nil {
			return nil, sqliteErr("list apps", err)
		}
		out = append(out, a)
	}
	return out, sqliteErr("list apps", rows.Err())
}
