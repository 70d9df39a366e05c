package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// benchBatch is the size of an edge batch in the benchmarks.
const benchBatch = 500

// benchWorld is a store with homes of children, as edges would write it.
type benchWorld struct {
	s        Store
	homes    []string
	children map[string][]string // home → children
}

func newBenchWorld(b *testing.B, e engine) *benchWorld { return newBenchWorldT(b, e) }

func newBenchWorldT(b testing.TB, e engine) *benchWorld {
	ctx := context.Background()
	w := &benchWorld{s: open(b, e.dsn(b), testOptions()), children: map[string][]string{}}
	for h := range 5 {
		home, _, err := w.s.AddHome(ctx, fmt.Sprintf("home %d", h))
		if err != nil {
			b.Fatal(err)
		}
		w.homes = append(w.homes, home)
		for range 10 {
			c, err := w.s.AddChild(ctx, home, "")
			if err != nil {
				b.Fatal(err)
			}
			w.children[home] = append(w.children[home], c)
		}
	}
	return w
}

// mixedMessages returns batch number i of one home: 40 % locations, 30 %
// site access with two visits, 30 % screen time with three apps of two
// hours (an update of a day already stored, as phones resend day totals).
// About 2.8 rows per message.
func (w *benchWorld) mixedMessages(home string, i int) []hearth.Message {
	children := w.children[home]
	msgs := make([]hearth.Message, 0, benchBatch)
	base := at(-24 * time.Hour)
	recv := at(-time.Hour).Add(time.Duration(i) * time.Millisecond)
	for j := range benchBatch {
		child := children[j%len(children)]
		ts := base.Add(time.Duration(i*benchBatch+j) * time.Millisecond)
		switch j % 10 {
		case 0, 1, 2, 3:
			msgs = append(msgs, locMsg(child, ts, 40.7128+float64(j)/1e4, -74.006, recv))
		case 4, 5, 6:
			msgs = append(msgs, siteMsg(child, recv, visit{ts, "https://example.com/a", true}, visit{ts, "https://example.com/b", false}))
		default:
			date := testNow.AddDate(0, 0, -(j/10)%30).Format(hearth.DateLayout)
			apps := map[string]map[int]int64{}
			for a := range 3 {
				apps[fmt.Sprintf("com.example.app%d", a)] = map[int]int64{(j + a) % 24: int64(i % 3600), (j + a + 1) % 24: 60}
			}
			msgs = append(msgs, stMsg(child, date, int64(i%86400), apps, recv))
		}
	}
	return msgs
}

func benchApply(b *testing.B, e engine, apply func(ctx context.Context, s Store, home string, msgs []hearth.Message) error) {
	ctx := context.Background()
	w := newBenchWorld(b, e)
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

func storeApply(ctx context.Context, s Store, home string, msgs []hearth.Message) error {
	res, err := s.Apply(ctx, home, msgs)
	if err != nil {
		return err
	}
	for i, r := range res {
		if r.Status != StatusOK {
			return fmt.Errorf("message %d: %+v", i, r)
		}
	}
	return nil
}

func BenchmarkApply_SQLite_500Mixed(b *testing.B)   { benchApply(b, engines[0], storeApply) }
func BenchmarkApply_Postgres_500Mixed(b *testing.B) { benchApply(b, engines[1], storeApply) }

// The seed system's way: one update_or_create per row, each in its own
// transaction, for the baseline ratio.
func BenchmarkApply_SQLite_500Mixed_SeedWay(b *testing.B)   { benchApply(b, engines[0], seedApply) }
func BenchmarkApply_Postgres_500Mixed_SeedWay(b *testing.B) { benchApply(b, engines[1], seedApply) }

// Several edges writing at once (one goroutine per home, GOMAXPROCS×4).
func BenchmarkApply_Postgres_500Mixed_Parallel(b *testing.B) { benchParallel(b, engines[1]) }
func BenchmarkApply_SQLite_500Mixed_Parallel(b *testing.B)   { benchParallel(b, engines[0]) }

func benchParallel(b *testing.B, e engine) {
	ctx := context.Background()
	w := newBenchWorld(b, e)
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
