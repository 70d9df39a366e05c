package store

import (
	"context"
	"fmt"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5"
)

// GuardianPostgres is the PostgreSQL store of the GuardianAI schema; see
// GuardianSQLite. A batch is one pipelined round of set-based statements:
// no statement's input depends on an earlier one's output in Go, since
// rows are joined to their Django ids in SQL.
type GuardianPostgres struct {
	db     *Postgres
	opts   Options
	report []string
}

var _ Store = (*GuardianPostgres)(nil)

// OpenGuardianPostgres opens the GuardianAI dashboard's PostgreSQL database,
// checks the Django tables hearth writes and applies hearth's pending
// migrations. A database without those tables is refused, saying what is
// missing.
func OpenGuardianPostgres(ctx context.Context, url string, opts Options) (*GuardianPostgres, error) {
	opts = opts.withDefaults()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w: %w", ErrInvalid, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	g := &GuardianPostgres{db: &Postgres{pool: newPGPool(cfg, opts.MaxConns), opts: opts}, opts: opts}
	if err := g.migrate(ctx); err != nil {
		g.db.pool.close()
		return nil, fmt.Errorf("open postgres (schema guardianai): %w", err)
	}
	return g, nil
}

// MigrationReport returns what the migration found in the seed's rows.
func (g *GuardianPostgres) MigrationReport() []string { return g.report }

func (g *GuardianPostgres) migrate(ctx context.Context) error {
	return g.db.tx(ctx, "migrate", pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrationLock); err != nil {
			return err
		}
		if err := pgCheckDjango(ctx, tx); err != nil {
			return err
		}
		current, err := pgApplyMigrations(ctx, tx, "hearth_schema_migrations", "guardianai_postgres", micro(g.opts.Now()))
		if err != nil {
			return err
		}
		if current == 0 {
			var locs, sites int64
			if err := tx.QueryRow(ctx, duplicatesSQL).Scan(&locs, &sites); err != nil {
				return fmt.Errorf("count the seed's duplicates: %w", err)
			}
			g.report = duplicateReport(locs, sites)
		}
		return nil
	})
}

// pgCheckDjango refuses a database without the Django tables and columns
// of djangoColumns (in the role's search path).
func pgCheckDjango(ctx context.Context, tx pgx.Tx) error {
	names := make([]string, len(djangoColumns))
	for i, t := range djangoColumns {
		names[i] = t.table
	}
	rows, err := tx.Query(ctx, `SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ANY($1)`, names)
	if err != nil {
		return fmt.Errorf("check the GuardianAI tables: %w", err)
	}
	have := map[string][]string{}
	var t, c string
	if _, err := pgx.ForEachRow(rows, []any{&t, &c}, func() error { have[t] = append(have[t], c); return nil }); err != nil {
		return fmt.Errorf("check the GuardianAI tables: %w", err)
	}
	if m := missingDjango(have); m != "" {
		return schemaMismatch(m)
	}
	return nil
}

// Close closes the idle connections.
func (g *GuardianPostgres) Close() error { return g.db.Close() }

// Ping checks that the server answers.
func (g *GuardianPostgres) Ping(ctx context.Context) error { return g.db.Ping(ctx) }

// The statements of a batch. $1 is now (but in the updates of locations
// and visits, which have no updated column) (created/updated, as Django's auto
// fields set them); rows come as parallel arrays. Every statement takes
// its rows in key order, so concurrent batches lock in the same order.
const (
	gaPGApps = `INSERT INTO backend_app (domain, app_name, icon_url, blocked_count)
SELECT d, n, '', 0 FROM unnest($1::text[], $2::text[]) AS u(d, n) ORDER BY d
ON CONFLICT (domain) DO NOTHING`

	// New days and their versions, and versions of days hearth did not
	// write (see gaPGHoursInsert).
	gaPGDaysInsert = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::date[], $4::int8[], $5::text[], $6::timestamptz[]) AS u(c, d, n, a, r)),
ins AS (INSERT INTO backend_screentime (date, total_screen_time, app_wise_data, created, updated, child_id)
	SELECT d, n, a::jsonb, $1, $1, c FROM u ORDER BY c, d ON CONFLICT (child_id, date) DO NOTHING RETURNING id, child_id, date),
miss AS (INSERT INTO hearth_screentime (row_id, received_at, total, apps)
	SELECT s.id, least(s.updated, $1::timestamptz), s.total_screen_time, s.app_wise_data::text
	FROM u JOIN backend_screentime AS s ON s.child_id = u.c AND s.date = u.d
	WHERE NOT EXISTS (SELECT 1 FROM hearth_screentime AS v WHERE v.row_id = s.id)
	ON CONFLICT (row_id) DO NOTHING)
INSERT INTO hearth_screentime (row_id, received_at, total, apps)
SELECT ins.id, u.r, u.n, u.a FROM ins JOIN u ON u.c = ins.child_id AND u.d = ins.date
ON CONFLICT (row_id) DO UPDATE SET received_at = excluded.received_at, total = excluded.total, apps = excluded.apps`

	// Known days that lose to the batch's: the version row is updated
	// first, under its row lock and re-checked against its latest value
	// (READ COMMITTED), so only winners are locked and written, and
	// newer-wins holds between concurrent batches.
	gaPGDaysUpdate = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::date[], $4::int8[], $5::text[], $6::timestamptz[]) AS u(c, d, n, a, r)),
win AS (UPDATE hearth_screentime AS v SET received_at = u.r, total = u.n, apps = u.a
	FROM u JOIN backend_screentime AS s ON s.child_id = u.c AND s.date = u.d
	WHERE v.row_id = s.id AND (u.r, u.n, u.a COLLATE "C") > (v.received_at, v.total, v.apps COLLATE "C")
	RETURNING v.row_id, u.n, u.a)
UPDATE backend_screentime AS s SET total_screen_time = win.n, app_wise_data = win.a::jsonb, updated = $1 FROM win WHERE s.id = win.row_id`

	gaPGHoursRows = `WITH u AS (SELECT s.id AS sid, a.id AS aid, u.h, u.n, u.r
	FROM unnest($2::int8[], $3::date[], $4::text[], $5::int2[], $6::int8[], $7::timestamptz[]) AS u(c, d, app, h, n, r)
	JOIN backend_screentime AS s ON s.child_id = u.c AND s.date = u.d JOIN backend_app AS a ON a.domain = u.app)`

	// New hours and their versions, and versions of hours hearth did not
	// write (the seed's, while it still ran beside hearth): their own
	// updated time (not after now). The two sets are disjoint: the second
	// sees the rows before this statement.
	gaPGHoursInsert = gaPGHoursRows + `,
ins AS (INSERT INTO backend_appscreentime (hour, seconds, created, updated, app_id, screen_time_id)
	SELECT h, n, $1, $1, aid, sid FROM u ORDER BY sid, aid, h ON CONFLICT (screen_time_id, app_id, hour) DO NOTHING
	RETURNING id, screen_time_id, app_id, hour),
miss AS (INSERT INTO hearth_appscreentime (row_id, received_at, seconds)
	SELECT x.id, least(x.updated, $1::timestamptz), x.seconds FROM u JOIN backend_appscreentime AS x ON x.screen_time_id = u.sid AND x.app_id = u.aid AND x.hour = u.h
	WHERE NOT EXISTS (SELECT 1 FROM hearth_appscreentime AS v WHERE v.row_id = x.id)
	ON CONFLICT (row_id) DO NOTHING)
INSERT INTO hearth_appscreentime (row_id, received_at, seconds)
SELECT ins.id, u.r, u.n FROM ins JOIN u ON u.sid = ins.screen_time_id AND u.aid = ins.app_id AND u.h = ins.hour
ON CONFLICT (row_id) DO UPDATE SET received_at = excluded.received_at, seconds = excluded.seconds`

	gaPGHoursUpdate = gaPGHoursRows + `,
win AS (UPDATE hearth_appscreentime AS v SET received_at = u.r, seconds = u.n
	FROM u JOIN backend_appscreentime AS x ON x.screen_time_id = u.sid AND x.app_id = u.aid AND x.hour = u.h
	WHERE v.row_id = x.id AND (u.r, u.n) > (v.received_at, v.seconds)
	RETURNING v.row_id, u.n)
UPDATE backend_appscreentime AS x SET seconds = win.n, updated = $1 FROM win WHERE x.id = win.row_id`

	// New fixes: the key first (its primary key admits one batch per
	// key), then the row under the id the key took.
	gaPGLocsInsert = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::timestamptz[], $4::float8[], $5::float8[], $6::timestamptz[]) AS u(c, ts, lat, lon, r)),
k AS (INSERT INTO hearth_locationhistory (child_id, ts, row_id, received_at, latitude, longitude)
	SELECT c, ts, nextval('backend_locationhistory_id_seq'), r, lat, lon FROM u ORDER BY c, ts
	ON CONFLICT (child_id, ts) DO NOTHING RETURNING row_id, child_id, ts, latitude, longitude)
INSERT INTO backend_locationhistory (id, "timestamp", latitude, longitude, created, child_id)
SELECT row_id, ts, latitude, longitude, $1, child_id FROM k`

	// Known fixes the batch's are newer than, the key first (see
	// gaPGDaysUpdate).
	gaPGLocsUpdate = `WITH u AS (SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::float8[], $4::float8[], $5::timestamptz[]) AS u(c, ts, lat, lon, r)),
win AS (UPDATE hearth_locationhistory AS k SET received_at = u.r, latitude = u.lat, longitude = u.lon
	FROM u WHERE k.child_id = u.c AND k.ts = u.ts AND (u.r, u.lat, u.lon) > (k.received_at, k.latitude, k.longitude)
	RETURNING k.row_id, u.lat, u.lon)
UPDATE backend_locationhistory AS l SET latitude = win.lat, longitude = win.lon FROM win WHERE l.id = win.row_id`

	// A key whose row the dashboard deleted gets its row back.
	gaPGLocsGone = `INSERT INTO backend_locationhistory (id, "timestamp", latitude, longitude, created, child_id)
SELECT k.row_id, k.ts, k.latitude, k.longitude, $1::timestamptz, k.child_id
FROM unnest($2::int8[], $3::timestamptz[]) AS u(c, ts) JOIN hearth_locationhistory AS k ON k.child_id = u.c AND k.ts = u.ts
WHERE NOT EXISTS (SELECT 1 FROM backend_locationhistory AS l WHERE l.id = k.row_id)
ON CONFLICT (id) DO NOTHING`

	gaPGSitesInsert = `WITH u AS (SELECT * FROM unnest($2::int8[], $3::timestamptz[], $4::text[], $5::bool[], $6::timestamptz[]) AS u(c, ts, url, acc, r)),
k AS (INSERT INTO hearth_siteaccesslog (child_id, ts, url, row_id, received_at, accessed)
	SELECT c, ts, url, nextval('backend_siteaccesslog_id_seq'), r, acc FROM u ORDER BY c, ts, url COLLATE "C"
	ON CONFLICT (child_id, ts, url) DO NOTHING RETURNING row_id, child_id, ts, url, accessed)
INSERT INTO backend_siteaccesslog (id, "timestamp", url, accessed, created, child_id)
SELECT row_id, ts, url, accessed, $1, child_id FROM k`

	gaPGSitesUpdate = `WITH u AS (SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::text[], $4::bool[], $5::timestamptz[]) AS u(c, ts, url, acc, r)),
win AS (UPDATE hearth_siteaccesslog AS k SET received_at = u.r, accessed = u.acc
	FROM u WHERE k.child_id = u.c AND k.ts = u.ts AND k.url = u.url AND (u.r, u.acc) > (k.received_at, k.accessed)
	RETURNING k.row_id, u.acc)
UPDATE backend_siteaccesslog AS l SET accessed = win.acc FROM win WHERE l.id = win.row_id`

	gaPGSitesGone = `INSERT INTO backend_siteaccesslog (id, "timestamp", url, accessed, created, child_id)
SELECT k.row_id, k.ts, k.url, k.accessed, $1::timestamptz, k.child_id
FROM unnest($2::int8[], $3::timestamptz[], $4::text[]) AS u(c, ts, url) JOIN hearth_siteaccesslog AS k ON k.child_id = u.c AND k.ts = u.ts AND k.url = u.url
WHERE NOT EXISTS (SELECT 1 FROM backend_siteaccesslog AS l WHERE l.id = k.row_id)
ON CONFLICT (id) DO NOTHING`
)

// Apply writes msgs into the Django tables in one transaction; see Store.
func (g *GuardianPostgres) Apply(ctx context.Context, home string, msgs []hearth.Message) ([]Result, error) {
	if len(msgs) == 0 {
		return []Result{}, nil
	}
	p := parse(msgs, g.opts)
	var results []Result
	err := g.db.tx(ctx, "apply batch", pgx.TxOptions{}, func(tx pgx.Tx) error {
		ids, owned, err := g.owners(ctx, tx, home, distinctChildren(msgs))
		if err != nil {
			return fmt.Errorf("look up children: %w", err)
		}
		var r rows
		results, r = p.plan(home, msgs, owned)
		b := gaPGBatch(r, ids, micro(g.opts.Now()))
		if b.Len() == 0 {
			return nil
		}
		br := tx.SendBatch(ctx, b)
		for range b.Len() {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// owners looks up the accounts_child ids of children and whether each is
// attached to home; see GuardianSQLite.owners.
func (g *GuardianPostgres) owners(ctx context.Context, tx pgx.Tx, home string, children []string) (map[string]int64, owners, error) {
	rows, err := tx.Query(ctx, `SELECT c.child_hash::text, c.id,
		EXISTS (SELECT 1 FROM hearth_home_children AS h WHERE h.home_id = $1 AND h.child_hash = c.child_hash)
		FROM accounts_child AS c WHERE c.child_hash = ANY($2::text[])`, home, children)
	if err != nil {
		return nil, nil, err
	}
	ids := make(map[string]int64, len(children))
	owned := make(owners, len(children))
	var hash string
	var id int64
	var in bool
	_, err = pgx.ForEachRow(rows, []any{&hash, &id, &in}, func() error {
		ids[hash] = id
		owned[hash] = notHome
		if in || home == "" {
			owned[hash] = home
		}
		return nil
	})
	return ids, owned, err
}

// gaPGBatch queues the statements of a batch's rows.
func gaPGBatch(r rows, ids map[string]int64, now time.Time) *pgx.Batch {
	b := &pgx.Batch{}
	if apps := distinctApps(r); len(apps) > 0 {
		names := make([]string, len(apps))
		for i, a := range apps {
			names[i] = appName(a)
		}
		b.Queue(gaPGApps, apps, names)
	}
	if n := len(r.days); n > 0 {
		c, d, t, a, rc := make([]int64, n), make([]string, n), make([]int64, n), make([]string, n), make([]time.Time, n)
		for i, x := range r.days {
			c[i], d[i], t[i], a[i], rc[i] = ids[x.child], x.date, x.total, x.apps, x.recv
		}
		b.Queue(gaPGDaysInsert, now, c, d, t, a, rc)
		b.Queue(gaPGDaysUpdate, now, c, d, t, a, rc)
	}
	if n := len(r.hours); n > 0 {
		c, d, a, h, t, rc := make([]int64, n), make([]string, n), make([]string, n), make([]int16, n), make([]int64, n), make([]time.Time, n)
		for i, x := range r.hours {
			c[i], d[i], a[i], h[i], t[i], rc[i] = ids[x.child], x.date, x.app, int16(x.hour), x.secs, x.recv
		}
		b.Queue(gaPGHoursInsert, now, c, d, a, h, t, rc)
		b.Queue(gaPGHoursUpdate, now, c, d, a, h, t, rc)
	}
	if n := len(r.locs); n > 0 {
		c, ts, lat, lon, rc := make([]int64, n), make([]time.Time, n), make([]float64, n), make([]float64, n), make([]time.Time, n)
		for i, x := range r.locs {
			c[i], ts[i], lat[i], lon[i], rc[i] = ids[x.child], x.ts, x.lat, x.lon, x.recv
		}
		// Insert first: a key another batch inserts meanwhile makes this
		// insert wait and skip it, and the update, a later statement, then
		// sees it and applies newer-wins.
		b.Queue(gaPGLocsInsert, now, c, ts, lat, lon, rc)
		b.Queue(gaPGLocsUpdate, c, ts, lat, lon, rc)
		b.Queue(gaPGLocsGone, now, c, ts)
	}
	if n := len(r.sites); n > 0 {
		c, ts, u, acc, rc := make([]int64, n), make([]time.Time, n), make([]string, n), make([]bool, n), make([]time.Time, n)
		for i, x := range r.sites {
			c[i], ts[i], u[i], acc[i], rc[i] = ids[x.child], x.ts, x.url, x.accessed, x.recv
		}
		b.Queue(gaPGSitesInsert, now, c, ts, u, acc, rc)
		b.Queue(gaPGSitesUpdate, c, ts, u, acc, rc)
		b.Queue(gaPGSitesGone, now, c, ts, u)
	}
	return b
}
