package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5"
)

// newGABenchWorld is newBenchWorld on the GuardianAI schema: 50 children
// in accounts_child, attached to 5 homes.
func newGABenchWorld(b testing.TB, e engine) *benchWorld {
	ctx := context.Background()
	var hashes []string
	for i := range 50 {
		hashes = append(hashes, fmt.Sprintf("bench-child-%02d", i))
	}
	var dsn string
	if e.name == gaEngines[0].name {
		dsn = gaSQLiteDSN(b, hashes...)
	} else {
		e.require(b)
		dsn = gaPostgresDSN(b, hashes...)
	}
	opts := testOptions()
	opts.Schema = SchemaGuardianAI
	w := &benchWorld{s: open(b, dsn, opts), children: map[string][]string{}}
	for h := range 5 {
		home, _, err := w.s.AddHome(ctx, fmt.Sprintf("home %d", h))
		if err != nil {
			b.Fatal(err)
		}
		w.homes = append(w.homes, home)
		for _, c := range hashes[h*10 : h*10+10] {
			if _, err := w.s.AddChild(ctx, home, c); err != nil {
				b.Fatal(err)
			}
			w.children[home] = append(w.children[home], c)
		}
	}
	return w
}

func benchGAApply(b *testing.B, e engine, apply func(ctx context.Context, s Store, home string, msgs []hearth.Message) error) {
	ctx := context.Background()
	w := newGABenchWorld(b, e)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		home := w.homes[i%len(w.homes)]
		msgs := w.mixedMessages(home, i)
		b.StartTimer()
		if err := apply(ctx, w.s, home, msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// The GuardianAI schema, hearth's way and the seed's way (one
// update_or_create per row, each in its own transaction, plain creates for
// locations and visits), on the mix of the hearth-schema benchmarks.
func BenchmarkApplyGuardianAI_SQLite_500Mixed(b *testing.B) {
	benchGAApply(b, gaEngines[0], storeApply)
}
func BenchmarkApplyGuardianAI_Postgres_500Mixed(b *testing.B) {
	benchGAApply(b, gaEngines[1], storeApply)
}
func BenchmarkApplyGuardianAI_Postgres_500Mixed_SeedWay(b *testing.B) {
	benchGAApply(b, gaEngines[1], gaSeedApply)
}
func BenchmarkApplyGuardianAI_Postgres_500Mixed_Parallel(b *testing.B) {
	ctx := context.Background()
	w := newGABenchWorld(b, gaEngines[1])
	type job struct {
		home string
		msgs []hearth.Message
	}
	jobs := make(chan job, b.N)
	for i := range b.N {
		home := w.homes[i%len(w.homes)]
		jobs <- job{home, w.mixedMessages(home, i)}
	}
	close(jobs)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := <-jobs
			if err := storeApply(ctx, w.s, j.home, j.msgs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkApplyGuardianAI_SQLite_LongestTx measures hearth's longest write
// transaction beside Django on SQLite: a whole edge batch at the default
// max_batch_messages (10000) in one Apply. Django waits for the lock up to
// its busy timeout, 5 s by default; max-ms must stay far below.
func BenchmarkApplyGuardianAI_SQLite_LongestTx(b *testing.B) {
	ctx := context.Background()
	w := newGABenchWorld(b, gaEngines[0])
	var longest time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		home := w.homes[i%len(w.homes)]
		var msgs []hearth.Message
		for k := range 20 {
			msgs = append(msgs, w.mixedMessages(home, i*20+k)...)
		}
		b.StartTimer()
		start := time.Now()
		if err := storeApply(ctx, w.s, home, msgs); err != nil {
			b.Fatal(err)
		}
		longest = max(longest, time.Since(start))
	}
	b.ReportMetric(float64(longest.Microseconds())/1000, "max-ms")
}

// gaSeedApply stores msgs as the seed did into the Django tables: per
// message a child lookup, then per row its own transaction: ScreenTime
// update_or_create, App get_or_create, AppScreenTime update_or_create
// (SELECT … FOR UPDATE, then UPDATE or INSERT), and a plain INSERT per
// location and visit.
func gaSeedApply(ctx context.Context, s Store, home string, msgs []hearth.Message) error {
	g := s.(*GuardianPostgres)
	opts := testOptions().withDefaults()
	opts.Schema = SchemaGuardianAI
	now := time.Now()
	return g.db.pool.with(ctx, func(c *pgx.Conn) error {
		for _, m := range msgs {
			var child int64
			if err := c.QueryRow(ctx, `SELECT id FROM accounts_child WHERE child_hash = $1`, m.ChildHash).Scan(&child); err != nil {
				return err
			}
			_, r := plan("", []hearth.Message{m}, owners{m.ChildHash: ""}, opts)
			for _, d := range r.days {
				sid, err := seedUpsert(ctx, c, `SELECT id FROM backend_screentime WHERE child_id = $1 AND date = $2::text::date FOR UPDATE`, []any{child, d.date},
					`UPDATE backend_screentime SET total_screen_time = $3, app_wise_data = $4::jsonb, updated = $5 WHERE child_id = $1 AND date = $2::text::date`,
					`INSERT INTO backend_screentime (child_id, date, total_screen_time, app_wise_data, updated, created) VALUES ($1, $2::text::date, $3, $4::jsonb, $5, $5) RETURNING id`,
					[]any{d.total, d.apps, now})
				if err != nil {
					return err
				}
				for _, h := range r.hours {
					aid, err := seedUpsert(ctx, c, `SELECT id FROM backend_app WHERE domain = $1`, []any{h.app}, "",
						`INSERT INTO backend_app (domain, app_name, icon_url, blocked_count) VALUES ($1, $2, '', 0) RETURNING id`, []any{appName(h.app)})
					if err != nil {
						return err
					}
					if _, err := seedUpsert(ctx, c, `SELECT id FROM backend_appscreentime WHERE screen_time_id = $1 AND app_id = $2 AND hour = $3 FOR UPDATE`,
						[]any{sid, aid, h.hour},
						`UPDATE backend_appscreentime SET seconds = $4, updated = $5 WHERE screen_time_id = $1 AND app_id = $2 AND hour = $3`,
						`INSERT INTO backend_appscreentime (screen_time_id, app_id, hour, seconds, updated, created) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`,
						[]any{h.secs, now}); err != nil {
						return err
					}
				}
			}
			for _, l := range r.locs {
				if _, err := c.Exec(ctx, `INSERT INTO backend_locationhistory (child_id, "timestamp", latitude, longitude, created) VALUES ($1, $2, $3, $4, $5)`,
					child, l.ts, l.lat, l.lon, now); err != nil {
					return err
				}
			}
			for _, v := range r.sites {
				if _, err := c.Exec(ctx, `INSERT INTO backend_siteaccesslog (child_id, "timestamp", url, accessed, created) VALUES ($1, $2, $3, $4, $5)`,
					child, v.ts, v.url, v.accessed, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// seedUpsert is Django's update_or_create (get_or_create when upd is ""):
// in its own transaction, the SELECT, then the UPDATE or the INSERT, with
// the key's arguments first and vals after. It returns the row's id.
func seedUpsert(ctx context.Context, c *pgx.Conn, sel string, keys []any, upd, ins string, vals []any) (int64, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	var id int64
	err = tx.QueryRow(ctx, sel, keys...).Scan(&id)
	args := append(append([]any{}, keys...), vals...)
	switch {
	case err == pgx.ErrNoRows:
		if err := tx.QueryRow(ctx, ins, args...).Scan(&id); err != nil {
			return 0, err
		}
	case err != nil:
		return 0, err
	case upd != "":
		if _, err := tx.Exec(ctx, upd, args...); err != nil {
			return 0, err
		}
	}
	return id, tx.Commit(ctx)
}

// BenchmarkApplyGuardianAI_Postgres_500Mixed_DjangoOnly writes the same
// batches as bare set-based upserts of the Django rows alone (by their
// natural keys, no newer-wins, no versions or dedupe keys): what writing
// these rows costs in PostgreSQL with Django's indexes and foreign keys,
// the floor under hearth's GuardianAI path.
func BenchmarkApplyGuardianAI_Postgres_500Mixed_DjangoOnly(b *testing.B) {
	benchGAApply(b, gaEngines[1], gaDjangoOnlyApply)
}

// The bare upserts of gaDjangoOnlyApply; $1 is now.
const (
	gaBareDays = `INSERT INTO backend_screentime (date, total_screen_time, app_wise_data, created, updated, child_id)
SELECT d, n, a::jsonb, $1, $1, c FROM unnest($2::int8[], $3::date[], $4::int8[], $5::text[]) AS u(c, d, n, a)
ON CONFLICT (child_id, date) DO UPDATE SET total_screen_time = excluded.total_screen_time, app_wise_data = excluded.app_wise_data, updated = excluded.updated`
	gaBareHours = `INSERT INTO backend_appscreentime (hour, seconds, created, updated, app_id, screen_time_id)
SELECT u.h, u.n, $1, $1, a.id, s.id FROM unnest($2::int8[], $3::date[], $4::text[], $5::int2[], $6::int8[]) AS u(c, d, app, h, n)
JOIN backend_screentime AS s ON s.child_id = u.c AND s.date = u.d JOIN backend_app AS a ON a.domain = u.app
ON CONFLICT (screen_time_id, app_id, hour) DO UPDATE SET seconds = excluded.seconds, updated = excluded.updated`
	gaBareLocs = `INSERT INTO backend_locationhistory ("timestamp", latitude, longitude, created, child_id)
SELECT ts, lat, lon, $1, c FROM unnest($2::int8[], $3::timestamptz[], $4::float8[], $5::float8[]) AS u(c, ts, lat, lon)`
	gaBareSites = `INSERT INTO backend_siteaccesslog ("timestamp", url, accessed, created, child_id)
SELECT ts, url, acc, $1, c FROM unnest($2::int8[], $3::timestamptz[], $4::text[], $5::bool[]) AS u(c, ts, url, acc)`
)

// gaDjangoOnlyApply writes the Django rows of msgs in one transaction as
// one pipelined round of bare upserts; see
// BenchmarkApplyGuardianAI_Postgres_500Mixed_DjangoOnly.
func gaDjangoOnlyApply(ctx context.Context, s Store, home string, msgs []hearth.Message) error {
	g := s.(*GuardianPostgres)
	now := micro(g.opts.Now())
	return g.db.tx(ctx, "django only", pgx.TxOptions{}, func(tx pgx.Tx) error {
		ids, owned, err := g.owners(ctx, tx, home, distinctChildren(msgs))
		if err != nil {
			return err
		}
		_, r := parse(msgs, g.opts).plan(home, msgs, owned)
		bt := &pgx.Batch{}
		apps := distinctApps(r)
		names := make([]string, len(apps))
		for i, a := range apps {
			names[i] = appName(a)
		}
		bt.Queue(gaPGApps, apps, names)
		var dc, hc, lc, sc []int64
		var dd, da, hd, ha, su []string
		var dn, hn []int64
		var hh []int16
		var lt, st []time.Time
		var lla, llo []float64
		var sa []bool
		for _, x := range r.days {
			dc, dd, dn, da = append(dc, ids[x.child]), append(dd, x.date), append(dn, x.total), append(da, x.apps)
		}
		for _, x := range r.hours {
			hc, hd, ha, hh, hn = append(hc, ids[x.child]), append(hd, x.date), append(ha, x.app), append(hh, int16(x.hour)), append(hn, x.secs)
		}
		for _, x := range r.locs {
			lc, lt, lla, llo = append(lc, ids[x.child]), append(lt, x.ts), append(lla, x.lat), append(llo, x.lon)
		}
		for _, x := range r.sites {
			sc, st, su, sa = append(sc, ids[x.child]), append(st, x.ts), append(su, x.url), append(sa, x.accessed)
		}
		bt.Queue(gaBareDays, now, dc, dd, dn, da)
		bt.Queue(gaBareHours, now, hc, hd, ha, hh, hn)
		bt.Queue(gaBareLocs, now, lc, lt, lla, llo)
		bt.Queue(gaBareSites, now, sc, st, su, sa)
		return tx.SendBatch(ctx, bt).Close()
	})
}
