package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkPruneDuringApply measures what a retention prune costs the
// batches applied meanwhile, on a large table: HEARTH_PRUNE_ROWS
// locations (skipped when unset; 10000000 for issue 13's figure) over
// pruneKids children, one every 30 s each, the oldest 10% past the cut.
// Two appliers send batches of 500 locations without pause, first with
// no prune (idle), then during store.Prune (batched), then, with the old
// rows loaded again, during one DELETE of them all (the prune before
// issue 13). It reports each phase's p99 apply time and the prunes'
// durations. Run once: -benchtime 1x.
func BenchmarkPruneDuringApply(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("HEARTH_PRUNE_ROWS"))
	if rows <= 0 {
		b.Skip("set HEARTH_PRUNE_ROWS (e.g. 10000000) to measure the prune on a large table")
	}
	for _, e := range []string{"SQLite", "Postgres"} {
		b.Run(e, func(b *testing.B) {
			var dsn string
			if e == "SQLite" {
				dsn = "sqlite://" + filepath.Join(b.TempDir(), "central.db")
			} else {
				pgtest.Require(b)
				dsn = pgtest.DSN(b)
			}
			for range b.N {
				measurePrune(b, dsn, rows)
			}
		})
	}
}

const pruneKids = 100

func measurePrune(b *testing.B, dsn string, rows int) {
	ctx := context.Background()
	s, err := OpenWith(ctx, dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	home, _, err := s.AddHome(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	kids := make([]string, pruneKids)
	for i := range kids {
		if kids[i], err = s.AddChild(ctx, home, ""); err != nil {
			b.Fatal(err)
		}
	}
	per := rows / pruneKids
	now := time.Now().UTC().Truncate(time.Second)
	first := now.Add(-time.Duration(per) * 30 * time.Second)
	cut := first.Add(time.Duration(per/10) * 30 * time.Second)
	t := time.Now()
	bulkLocations(b, s, kids, first, 0, per)
	b.Logf("%s: loaded %d locations in %s; %d before the cut", engineName(s), per*pruneKids, time.Since(t).Round(time.Second), per/10*pruneKids)

	idle := applyWhile(b, s, home, kids, func() { time.Sleep(20 * time.Second) })
	var pruned int64
	var took time.Duration
	during := applyWhile(b, s, home, kids, func() {
		t := time.Now()
		if pruned, err = s.Prune(ctx, cut); err != nil {
			b.Error(err)
		}
		took = time.Since(t)
	})
	bulkLocations(b, s, kids, first, 0, per/10)
	var oldTook time.Duration
	single := applyWhile(b, s, home, kids, func() {
		t := time.Now()
		oneDelete(b, s, cut)
		oldTook = time.Since(t)
	})
	b.ReportMetric(ms(p99(idle)), "p99-idle-ms")
	b.ReportMetric(ms(p99(during)), "p99-prune-ms")
	b.ReportMetric(ms(p99(single)), "p99-onedelete-ms")
	b.ReportMetric(took.Seconds(), "prune-s")
	b.ReportMetric(oldTook.Seconds(), "onedelete-s")
	b.Logf("%s: p99 apply idle %.1f ms (%d batches), during the batched prune %.1f ms (%d batches; %d rows in %s), during one DELETE %.1f ms (%d batches; %s); max %.0f / %.0f / %.0f ms",
		engineName(s), ms(p99(idle)), len(idle), ms(p99(during)), len(during), pruned, took.Round(time.Millisecond),
		ms(p99(single)), len(single), oldTook.Round(time.Millisecond), ms(slices.Max(idle)), ms(slices.Max(during)), ms(slices.Max(single)))
}

func engineName(s Store) string { return fmt.Sprintf("%T", s)[7:] }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// applyWhile runs two appliers of 500-location batches (recent times,
// never before sent) until during returns, and returns every Apply's time.
func applyWhile(b *testing.B, s Store, home string, kids []string, during func()) []time.Duration {
	stop := make(chan struct{})
	var mu sync.Mutex
	var out []time.Duration
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				kid := kids[(seq*2+w)%len(kids)]
				base := time.Now().Add(-time.Hour)
				msgs := make([]hearth.Message, 500)
				for i := range msgs {
					msgs[i] = locMsg(kid, base.Add(time.Duration(i)*time.Microsecond), 1, 1, time.Now())
				}
				t := time.Now()
				if _, err := s.Apply(context.Background(), home, msgs); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t)
				mu.Lock()
				out = append(out, d)
				mu.Unlock()
			}
		})
	}
	during()
	close(stop)
	wg.Wait()
	return out
}

// bulkLocations writes per locations for each kid, one every 30 s from
// first (skipping the first skip), with SQL of the engine: Apply would
// take hours for ten million.
func bulkLocations(b *testing.B, s Store, kids []string, first time.Time, skip, per int) {
	ctx := context.Background()
	switch st := s.(type) {
	case *SQLite:
		for _, kid := range kids {
			_, err := st.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
				INSERT OR IGNORE INTO locations (child, ts, latitude, longitude, received_at)
				SELECT ?, strftime('%Y-%m-%dT%H:%M:%S', ?, '+' || (i * 30) || ' seconds') || '.000000Z', 1, 1, ? FROM n`,
				skip, per, kid, first.Format("2006-01-02 15:04:05"), fmtTS(time.Now()))
			if err != nil {
				b.Fatal(err)
			}
		}
	case *Postgres:
		err := st.pool.with(ctx, func(c *pgxConn) error {
			_, err := c.Exec(ctx, `INSERT INTO locations (child, ts, latitude, longitude, received_at)
				SELECT k, $2::timestamptz + i * interval '30 seconds', 1, 1, now()
				FROM unnest($1::text[]) AS k, generate_series($3::int, $4::int - 1) AS i ON CONFLICT DO NOTHING`,
				kids, first, skip, per)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := st.pool.with(ctx, func(c *pgxConn) error { _, err := c.Exec(ctx, `VACUUM ANALYZE locations`); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// oneDelete is the prune before issue 13: every old row in one statement.
func oneDelete(b *testing.B, s Store, cut time.Time) {
	ctx := context.Background()
	var err error
	switch st := s.(type) {
	case *SQLite:
		_, err = st.w.ExecContext(ctx, `DELETE FROM locations WHERE ts < ?`, fmtTS(cut))
	case *Postgres:
		err = st.pool.with(ctx, func(c *pgxConn) error { _, err := c.Exec(ctx, `DELETE FROM locations WHERE ts < $1`, cut); return err })
	}
	if err != nil {
		b.Fatal(err)
	}
}

type pgxConn = pgx.Conn
