package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/guardianai/hearth"
)

// GuardianSQLite is the SQLite store of the GuardianAI schema: phones' data
// goes into the dashboard's Django tables the way its seed wrote it, and
// hearth's own state into hearth_ tables beside them (see
// migrations/guardianai_sqlite). Connections are those of SQLite.
type GuardianSQLite struct {
	db   *SQLite
	opts Options
	// report says what migrate found in a database holding the seed's
	// rows (the duplicates it left); empty when there was nothing to say.
	report []string
}

var _ Store = (*GuardianSQLite)(nil)

// OpenGuardianSQLite opens the GuardianAI dashboard's SQLite database at
// path, checks the Django tables hearth writes and applies hearth's pending
// migrations. A file without those tables is refused, saying what is
// missing: hearth never creates Django tables.
func OpenGuardianSQLite(ctx context.Context, path string, opts Options) (*GuardianSQLite, error) {
	opts = opts.withDefaults()
	// The dashboard's database exists already: a missing file is a wrong
	// --db, and opening it would leave an empty database behind.
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open sqlite %s (schema guardianai): %w: no such file; point --db at the GuardianAI dashboard's database (its Django DATABASES NAME, e.g. db.sqlite3)", path, ErrSchemaMismatch)
	}
	db, err := openSQLiteConns(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	g := &GuardianSQLite{db: db, opts: opts}
	if err := g.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s (schema guardianai): %w", path, err)
	}
	return g, nil
}

// MigrationReport returns what the migration found; see GuardianSQLite.report.
func (g *GuardianSQLite) MigrationReport() []string { return g.report }

func (g *GuardianSQLite) migrate(ctx context.Context) error {
	tx, err := g.db.w.BeginTx(ctx, nil)
	if err != nil {
		return sqliteErr("migrate", err)
	}
	defer tx.Rollback()
	if err := sqliteCheckDjango(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS hearth_schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return sqliteErr("migrate", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM hearth_schema_migrations`).Scan(&current); err != nil {
		return sqliteErr("migrate", err)
	}
	todo, err := pending("guardianai_sqlite", current)
	if err != nil {
		return err
	}
	for _, m := range todo {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO hearth_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, fmtDjango(g.opts.Now())); err != nil {
			return sqliteErr("migrate", err)
		}
	}
	if current == 0 {
		if g.report, err = sqliteDuplicates(ctx, tx); err != nil {
			return sqliteErr("migrate: count the seed's duplicates", err)
		}
	}
	return sqliteErr("migrate", tx.Commit())
}

// sqliteCheckDjango refuses a database without the Django tables and
// columns of djangoColumns.
func sqliteCheckDjango(ctx context.Context, tx *sql.Tx) error {
	have := map[string][]string{}
	for _, t := range djangoColumns {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, t.table)
		if err != nil {
			return sqliteErr("check the GuardianAI tables", err)
		}
		var cols []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return sqliteErr("check the GuardianAI tables", err)
			}
			cols = append(cols, c)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return sqliteErr("check the GuardianAI tables", err)
		}
		if len(cols) > 0 {
			have[t.table] = cols
		}
	}
	if m := missingDjango(have); m != "" {
		return schemaMismatch(m)
	}
	return nil
}

// duplicatesSQL counts the rows the seed wrote twice (or more) for one key:
// the rows of a table less its keys.
const duplicatesSQL = `SELECT (SELECT count(*) FROM backend_locationhistory) - (SELECT count(*) FROM hearth_locationhistory),
	(SELECT count(*) FROM backend_siteaccesslog) - (SELECT count(*) FROM hearth_siteaccesslog)`

// sqliteDuplicates reports the duplicates the seed left.
func sqliteDuplicates(ctx context.Context, tx *sql.Tx) ([]string, error) {
	var locs, sites int64
	if err := tx.QueryRowContext(ctx, duplicatesSQL).Scan(&locs, &sites); err != nil {
		return nil, err
	}
	return duplicateReport(locs, sites), nil
}

// duplicateReport says what the seed left, for `hearth-central migrate`.
func duplicateReport(locs, sites int64) []string {
	var out []string
	for _, d := range []struct {
		table string
		n     int64
	}{{"backend_locationhistory", locs}, {"backend_siteaccesslog", sites}} {
		if d.n > 0 {
			out = append(out, fmt.Sprintf("%s: %d duplicate rows left by the seed (same child and timestamp%s as a row with a lower id); hearth updates the lowest id of each and leaves the others alone",
				d.table, d.n, map[bool]string{true: " and url"}[d.table == "backend_siteaccesslog"]))
		}
	}
	return out
}

// Close closes the connections.
func (g *GuardianSQLite) Close() error { return g.db.Close() }

// Ping checks the writer connection.
func (g *GuardianSQLite) Ping(ctx context.Context) error { return g.db.Ping(ctx) }

// Apply writes msgs into the Django tables in one transaction; see Store.
// Rows are written one statement each: SQLite runs in process, so a
// statement costs microseconds, and the lookups decide between insert,
// update and nothing the way Django's update_or_create would, plus
// newer-wins.
func (g *GuardianSQLite) Apply(ctx context.Context, home string, msgs []hearth.Message) ([]Result, error) {
	if len(msgs) == 0 {
		return []Result{}, nil
	}
	p := parse(msgs, g.opts)
	done, err := g.db.writerTurn(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	tx, err := g.db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, sqliteErr("apply batch", err)
	}
	defer tx.Rollback()
	ids, owned, err := g.owners(ctx, tx, home, distinctChildren(msgs))
	if err != nil {
		return nil, sqliteErr("apply batch: look up children", err)
	}
	results, r := p.plan(home, msgs, owned)
	w := &gaSQLiteWriter{ctx: ctx, tx: tx, now: fmtDjango(g.opts.Now()), child: ids}
	if err := w.write(r); err != nil {
		return nil, sqliteErr("apply batch", err)
	}
	if err := g.lc().countMessages(ctx, tx, home, storedCount(results)); err != nil {
		return nil, sqliteErr("apply batch: count messages", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, sqliteErr("apply batch: commit", err)
	}
	return results, nil
}

// owners looks up the accounts_child ids of children and whether each is
// attached to home. Every accounts_child row is known, attached or not,
// active or not, as the seed accepted them.
func (g *GuardianSQLite) owners(ctx context.Context, tx *sql.Tx, home string, children []string) (map[string]int64, owners, error) {
	var b jsonArray
	for _, c := range children {
		b.str(c)
	}
	rows, err := tx.QueryContext(ctx, `SELECT c.child_hash, c.id,
		EXISTS (SELECT 1 FROM hearth_home_children AS h WHERE h.home_id = ? AND h.child_hash = c.child_hash)
		FROM json_each(?) AS j JOIN accounts_child AS c ON c.child_hash = j.value`, home, string(b.done()))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	ids := make(map[string]int64, len(children))
	owned := make(owners, len(children))
	for rows.Next() {
		var hash string
		var id int64
		var in bool
		if err := rows.Scan(&hash, &id, &in); err != nil {
			return nil, nil, err
		}
		ids[hash] = id
		owned[hash] = notHome
		if in || home == "" {
			owned[hash] = home
		}
	}
	return ids, owned, rows.Err()
}

// gaSQLiteWriter writes one batch's rows in its transaction.
type gaSQLiteWriter struct {
	ctx   context.Context
	tx    *sql.Tx
	now   string           // created/updated, as Django's auto fields set them
	child map[string]int64 // child hash → accounts_child.id
	apps  map[string]int64 // app id → backend_app.id
	days  map[dayKey]int64 // → backend_screentime.id
}

func (w *gaSQLiteWriter) write(r rows) error {
	if err := w.ensureApps(distinctApps(r)); err != nil {
		return fmt.Errorf("apps: %w", err)
	}
	if err := w.writeDays(r.days); err != nil {
		return fmt.Errorf("screen time: %w", err)
	}
	if err := w.writeHours(r.hours); err != nil {
		return fmt.Errorf("app screen time: %w", err)
	}
	if err := w.writeLocs(r.locs); err != nil {
		return fmt.Errorf("locations: %w", err)
	}
	if err := w.writeSites(r.sites); err != nil {
		return fmt.Errorf("site access: %w", err)
	}
	return nil
}

// ensureApps creates the backend_app rows of new app ids as the seed did
// when the Play Store did not answer, leaves existing rows alone, and
// learns every id.
func (w *gaSQLiteWriter) ensureApps(apps []string) error {
	w.apps = make(map[string]int64, len(apps))
	if len(apps) == 0 {
		return nil
	}
	var b jsonArray
	for _, a := range apps {
		b.row().str(a).str(appName(a))
	}
	js := string(b.done())
	if _, err := w.tx.ExecContext(w.ctx, `INSERT INTO backend_app (domain, app_name, icon_url, blocked_count)
		SELECT value->>0, value->>1, '', 0 FROM json_each(?) WHERE true ON CONFLICT (domain) DO NOTHING`, js); err != nil {
		return err
	}
	rows, err := w.tx.QueryContext(w.ctx, `SELECT a.domain, a.id FROM json_each(?) AS j JOIN backend_app AS a ON a.domain = j.value->>0`, js)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		var id int64
		if err := rows.Scan(&d, &id); err != nil {
			return err
		}
		w.apps[d] = id
	}
	return rows.Err()
}

func (w *gaSQLiteWriter) prepare(queries ...string) ([]*sql.Stmt, func(), error) {
	out := make([]*sql.Stmt, 0, len(queries))
	done := func() {
		for _, s := range out {
			s.Close()
		}
	}
	for _, q := range queries {
		s, err := w.tx.PrepareContext(w.ctx, q)
		if err != nil {
			done()
			return nil, nil, err
		}
		out = append(out, s)
	}
	return out, done, nil
}

// writeDays is update_or_create(child, date) of backend_screentime, where
// the stored version (or, for a seed row, its updated time) must lose.
func (w *gaSQLiteWriter) writeDays(days []dayRow) error {
	w.days = make(map[dayKey]int64, len(days))
	if len(days) == 0 {
		return nil
	}
	st, done, err := w.prepare(
		`SELECT s.id, coalesce(v.received_at, s.updated), coalesce(v.total, s.total_screen_time), coalesce(v.apps, s.app_wise_data)
			FROM backend_screentime AS s LEFT JOIN hearth_screentime AS v ON v.row_id = s.id WHERE s.child_id = ? AND s.date = ?`,
		`INSERT INTO backend_screentime (date, total_screen_time, app_wise_data, created, updated, child_id) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		`UPDATE backend_screentime SET total_screen_time = ?, app_wise_data = ?, updated = ? WHERE id = ?`,
		`INSERT INTO hearth_screentime (row_id, received_at, total, apps) VALUES (?, ?, ?, ?)
			ON CONFLICT (row_id) DO UPDATE SET received_at = excluded.received_at, total = excluded.total, apps = excluded.apps`)
	if err != nil {
		return err
	}
	defer done()
	sel, ins, upd, ver := st[0], st[1], st[2], st[3]
	for _, d := range days {
		cid := w.child[d.child]
		var id int64
		var recv, apps string
		var cur dayRow
		err := sel.QueryRowContext(w.ctx, cid, d.date).Scan(&id, &recv, &cur.total, &apps)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := ins.QueryRowContext(w.ctx, d.date, d.total, d.apps, w.now, w.now, cid).Scan(&id); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if cur.recv, err = parseDjango(recv); err != nil {
				return err
			}
			cur.apps = apps
			if !d.newer(cur) {
				w.days[d.dayKey] = id
				continue
			}
			if _, err := upd.ExecContext(w.ctx, d.total, d.apps, w.now, id); err != nil {
				return err
			}
		}
		w.days[d.dayKey] = id
		if _, err := ver.ExecContext(w.ctx, id, fmtDjango(d.recv), d.total, d.apps); err != nil {
			return err
		}
	}
	return nil
}

// writeHours is update_or_create(screen_time, app, hour) of
// backend_appscreentime, newer-wins per hour.
func (w *gaSQLiteWriter) writeHours(hours []hourRow) error {
	if len(hours) == 0 {
		return nil
	}
	st, done, err := w.prepare(
		`SELECT a.id, coalesce(v.received_at, a.updated), coalesce(v.seconds, a.seconds)
			FROM backend_appscreentime AS a LEFT JOIN hearth_appscreentime AS v ON v.row_id = a.id
			WHERE a.screen_time_id = ? AND a.app_id = ? AND a.hour = ?`,
		`INSERT INTO backend_appscreentime (hour, seconds, created, updated, app_id, screen_time_id) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		`UPDATE backend_appscreentime SET seconds = ?, updated = ? WHERE id = ?`,
		`INSERT INTO hearth_appscreentime (row_id, received_at, seconds) VALUES (?, ?, ?)
			ON CONFLICT (row_id) DO UPDATE SET received_at = excluded.received_at, seconds = excluded.seconds`)
	if err != nil {
		return err
	}
	defer done()
	sel, ins, upd, ver := st[0], st[1], st[2], st[3]
	for _, h := range hours {
		sid, aid := w.days[dayKey{h.child, h.date}], w.apps[h.app]
		var id int64
		var recv string
		var cur hourRow
		err := sel.QueryRowContext(w.ctx, sid, aid, h.hour).Scan(&id, &recv, &cur.secs)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := ins.QueryRowContext(w.ctx, h.hour, h.secs, w.now, w.now, aid, sid).Scan(&id); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if cur.recv, err = parseDjango(recv); err != nil {
				return err
			}
			if !h.newer(cur) {
				continue
			}
			if _, err := upd.ExecContext(w.ctx, h.secs, w.now, id); err != nil {
				return err
			}
		}
		if _, err := ver.ExecContext(w.ctx, id, fmtDjango(h.recv), h.secs); err != nil {
			return err
		}
	}
	return nil
}

// writeLocs creates a backend_locationhistory row per new (child,
// timestamp), and updates the row of a known one when the fix is newer: a
// resend is not a second row. A key whose row the dashboard deleted gets
// a new row.
func (w *gaSQLiteWriter) writeLocs(locs []locRow) error {
	if len(locs) == 0 {
		return nil
	}
	st, done, err := w.prepare(
		`SELECT k.row_id, k.received_at, k.latitude, k.longitude FROM hearth_locationhistory AS k
			WHERE k.child_id = ? AND k.ts = ? AND EXISTS (SELECT 1 FROM backend_locationhistory AS l WHERE l.id = k.row_id)`,
		`INSERT INTO backend_locationhistory (timestamp, latitude, longitude, created, child_id) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		`UPDATE backend_locationhistory SET latitude = ?, longitude = ? WHERE id = ?`,
		`INSERT INTO hearth_locationhistory (child_id, ts, row_id, received_at, latitude, longitude) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (child_id, ts) DO UPDATE SET row_id = excluded.row_id, received_at = excluded.received_at,
			latitude = excluded.latitude, longitude = excluded.longitude`)
	if err != nil {
		return err
	}
	defer done()
	sel, ins, upd, key := st[0], st[1], st[2], st[3]
	for _, l := range locs {
		cid, ts := w.child[l.child], fmtDjango(l.ts)
		var id int64
		var recv string
		var cur locRow
		err := sel.QueryRowContext(w.ctx, cid, ts).Scan(&id, &recv, &cur.lat, &cur.lon)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := ins.QueryRowContext(w.ctx, ts, l.lat, l.lon, w.now, cid).Scan(&id); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if cur.recv, err = parseDjango(recv); err != nil {
				return err
			}
			if !l.newer(cur) {
				continue
			}
			if _, err := upd.ExecContext(w.ctx, l.lat, l.lon, id); err != nil {
				return err
			}
		}
		if _, err := key.ExecContext(w.ctx, cid, ts, id, fmtDjango(l.recv), l.lat, l.lon); err != nil {
			return err
		}
	}
	return nil
}

// writeSites is writeLocs for backend_siteaccesslog, keyed by (child,
// timestamp, url).
func (w *gaSQLiteWriter) writeSites(sites []siteRow) error {
	if len(sites) == 0 {
		return nil
	}
	st, done, err := w.prepare(
		`SELECT k.row_id, k.received_at, k.accessed FROM hearth_siteaccesslog AS k
			WHERE k.child_id = ? AND k.ts = ? AND k.url = ? AND EXISTS (SELECT 1 FROM backend_siteaccesslog AS s WHERE s.id = k.row_id)`,
		`INSERT INTO backend_siteaccesslog (timestamp, url, accessed, created, child_id) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		`UPDATE backend_siteaccesslog SET accessed = ? WHERE id = ?`,
		`INSERT INTO hearth_siteaccesslog (child_id, ts, url, row_id, received_at, accessed) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (child_id, ts, url) DO UPDATE SET row_id = excluded.row_id, received_at = excluded.received_at, accessed = excluded.accessed`)
	if err != nil {
		return err
	}
	defer done()
	sel, ins, upd, key := st[0], st[1], st[2], st[3]
	for _, s := range sites {
		cid, ts := w.child[s.child], fmtDjango(s.ts)
		var id int64
		var recv string
		var cur siteRow
		err := sel.QueryRowContext(w.ctx, cid, ts, s.url).Scan(&id, &recv, &cur.accessed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := ins.QueryRowContext(w.ctx, ts, s.url, s.accessed, w.now, cid).Scan(&id); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if cur.recv, err = parseDjango(recv); err != nil {
				return err
			}
			if !s.newer(cur) {
				continue
			}
			if _, err := upd.ExecContext(w.ctx, s.accessed, id); err != nil {
				return err
			}
		}
		if _, err := key.ExecContext(w.ctx, cid, ts, s.url, id, fmtDjango(s.recv), s.accessed); err != nil {
			return err
		}
	}
	return nil
}

var _ = time.Now
