package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/jackc/pgx/v5/pgconn"
)

// Ensure that concurrent batches updating overlapping keys of every table
// never deadlock on PostgreSQL, and that newer-wins holds between them: a
// batch locks the rows it writes in key order, whatever the plan of its
// statements. The keys are laid out in the tables out of key order, and
// batches of one key and of all keys run together, so that statements
// whose lock order followed their plan (a nested loop over the batch's
// rows for a small one, a scan of the table for a large one) would lock
// in different orders. Each run does 8 writers × 12 batches; -count=N
// repeats it.
func TestGuardianAI_Postgres_ConcurrentOverlapNoDeadlock(t *testing.T) {
	for _, e := range []engine{gaEngines[1], engines[1]} {
		t.Run(e.name, func(t *testing.T) {
			e.require(t)
			testConcurrentOverlap(t, e)
		})
	}
}

func testConcurrentOverlap(t *testing.T, e engine) {
	ctx := context.Background()
	opts := testOptions()
	opts.Schema = e.schema
	opts.MaxConns = 8
	s := open(t, e.dsn(t), opts)
	home, _, err := s.AddHome(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	children := []string{"child-a1", "child-a2"}
	for _, c := range children {
		if _, err := s.AddChild(ctx, home, c); err != nil {
			t.Fatal(err)
		}
	}
	keys := overlapKeys(children)
	rng := rand.New(rand.NewPCG(1, 2))
	var all []hearth.Message
	// Lay the keys out of order: first written in shuffled small batches.
	seed := slices.Clone(keys)
	rng.Shuffle(len(seed), func(i, j int) { seed[i], seed[j] = seed[j], seed[i] })
	for chunk := range slices.Chunk(seed, 7) {
		msgs := overlapBatch(chunk, 0, 0, overlapAll)
		applyOK(t, s, home, msgs...)
		all = append(all, msgs...)
	}

	const writers, rounds = 8, 12
	batches := make([][][]hearth.Message, writers)
	for w := range writers {
		for r := range rounds {
			var pick []overlapKey
			switch rng.IntN(3) {
			case 0: // one key
				pick = []overlapKey{keys[rng.IntN(len(keys))]}
			case 1: // a few
				for range 1 + rng.IntN(8) {
					pick = append(pick, keys[rng.IntN(len(keys))])
				}
			default: // all
				pick = keys
			}
			// One kind of row per batch, or all kinds: batches of different
			// tables do not wait for each other at their first table.
			batches[w] = append(batches[w], overlapBatch(pick, 1+w*rounds+r, int64(rng.IntN(1000)), rng.IntN(4)))
		}
		for _, b := range batches[w] {
			all = append(all, b...)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			for _, msgs := range batches[w] {
				if _, err := s.Apply(ctx, home, msgs); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	deadlocks := 0
	for err := range errs {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "40P01" {
			deadlocks++
			continue
		}
		t.Error(err)
	}
	if deadlocks > 0 {
		t.Fatalf("%d of %d batches failed with a deadlock", deadlocks, writers*rounds)
	}
	// Newer-wins across the writers: the tables hold, per key, the row
	// that plan picks among every message sent.
	_, r := plan(home, all, owners{children[0]: home, children[1]: home}, opts.withDefaults())
	got := dump(t, s)
	want := tables{}
	for _, d := range r.days {
		want.Days = append(want.Days, d.String())
	}
	for _, h := range r.hours {
		want.Hours = append(want.Hours, h.String())
	}
	for _, l := range r.locs {
		want.Locs = append(want.Locs, l.String())
	}
	for _, v := range r.sites {
		want.Sites = append(want.Sites, v.String())
	}
	want.sort()
	for i, pair := range [][2][]string{{got.Days, want.Days}, {got.Hours, want.Hours}, {got.Locs, want.Locs}, {got.Sites, want.Sites}} {
		if !slices.Equal(pair[0], pair[1]) {
			t.Errorf("table %d after concurrent batches:\n got %q\nwant %q", i, pair[0], pair[1])
		}
	}
}

// overlapKey is one key of each kind of row: a day with an app's hour, a
// location and a visit.
type overlapKey struct {
	child, date, app string
	hour             int
	ts               time.Time
}

func overlapKeys(children []string) []overlapKey {
	var keys []overlapKey
	for _, c := range children {
		for d := range 5 {
			for a := range 3 {
				for h := range 8 {
					keys = append(keys, overlapKey{c, testNow.AddDate(0, 0, -d).Format(hearth.DateLayout),
						fmt.Sprintf("com.example.app%d", a), h * 3, at(-2*time.Hour - time.Duration(d*24+a*8+h)*time.Minute)})
				}
			}
		}
	}
	return keys
}

// The kinds of row overlapBatch writes.
const (
	overlapScreenTime = iota
	overlapLocations
	overlapSites
	overlapAll
)

// overlapBatch writes every key of keys: its hour (and so its day), its
// location or its visit, or all three (kind), received at n seconds after
// the start, with value v.
func overlapBatch(keys []overlapKey, n int, v int64, kind int) []hearth.Message {
	recv := at(-time.Hour).Add(time.Duration(n) * time.Second)
	msgs := make([]hearth.Message, 0, 3*len(keys))
	for _, k := range keys {
		if kind == overlapScreenTime || kind == overlapAll {
			msgs = append(msgs, stMsg(k.child, k.date, v, map[string]map[int]int64{k.app: {k.hour: v}}, recv))
		}
		if kind == overlapLocations || kind == overlapAll {
			msgs = append(msgs, locMsg(k.child, k.ts, float64(v)/10, float64(n), recv))
		}
		if kind == overlapSites || kind == overlapAll {
			msgs = append(msgs, siteMsg(k.child, recv, visit{k.ts, "https://example.com/" + k.app, v%2 == 0}))
		}
	}
	return msgs
}
