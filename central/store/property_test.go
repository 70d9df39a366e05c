package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// genMsg is a generated message and what the model needs to know of it.
type genMsg struct {
	msg    hearth.Message
	tooOld bool
	days   []dayRow
	hours  []hourRow
	locs   []locRow
	sites  []siteRow
}

// propGen generates messages over a small key space, so that keys, ties
// of received_at and equal values collide often.
type propGen struct {
	r        *rand.Rand
	children []string // known and unknown
}

func (g *propGen) recv() time.Time {
	t := at(-time.Duration(g.r.IntN(3)) * time.Second)
	if g.r.IntN(4) == 0 {
		t = t.Add(300 * time.Nanosecond) // same microsecond: a tie
	}
	return t
}

func (g *propGen) ts() time.Time {
	t := at(-time.Hour).Add(time.Duration(g.r.IntN(2)) * time.Second)
	if g.r.IntN(4) == 0 {
		t = t.Add(700 * time.Nanosecond) // same stored key
	}
	return t
}

func (g *propGen) coord(limit float64) float64 {
	switch g.r.IntN(3) {
	case 0:
		return 1.5
	case 1:
		return -2.25
	}
	return (g.r.Float64()*2 - 1) * limit
}

func (g *propGen) next() genMsg {
	child := g.children[g.r.IntN(len(g.children))]
	recv := g.recv()
	rv := micro(recv)
	switch g.r.IntN(3) {
	case 0:
		date := []string{"2025-12-09", "2025-12-10"}[g.r.IntN(2)]
		tooOld := g.r.IntN(15) == 0
		if tooOld {
			date = "2024-01-01"
		}
		total := int64(g.r.IntN(3) * 100)
		apps := map[string]map[int]int64{}
		m := genMsg{tooOld: tooOld, days: []dayRow{{dayKey: dayKey{child, date}, total: total, recv: rv}}}
		for _, app := range []string{"a", "b", "c"} {
			if g.r.IntN(2) == 0 {
				continue
			}
			apps[app] = map[int]int64{}
			for _, h := range []int{0, 5, 23} {
				if g.r.IntN(2) == 0 {
					s := int64(g.r.IntN(3) * 10)
					apps[app][h] = s
					m.hours = append(m.hours, hourRow{hourKey{child, date, app, h}, s, rv})
				}
			}
		}
		m.msg = stMsg(child, date, total, apps, recv)
		return m
	case 1:
		ts, lat, lon := g.ts(), g.coord(90), g.coord(180)
		return genMsg{msg: locMsg(child, ts, lat, lon, recv), locs: []locRow{{tsKey{child, micro(ts)}, lat, lon, rv}}}
	}
	var m genMsg
	var visits []visit
	for range 1 + g.r.IntN(3) {
		v := visit{g.ts(), "https://u" + strconv.Itoa(g.r.IntN(2)), g.r.IntN(2) == 0}
		visits = append(visits, v)
		m.sites = append(m.sites, siteRow{siteKey{tsKey{child, micro(v.ts)}, v.url}, v.accessed, rv})
	}
	m.msg = siteMsg(child, recv, visits...)
	return m
}

// model is the expected final state: the winning row per key among the
// rows of every accepted application, with the tie-break written out
// again here rather than reusing the store's.
type model struct {
	days  map[dayKey]dayRow
	hours map[hourKey]hourRow
	locs  map[tsKey]locRow
	sites map[siteKey]siteRow
}

func newModel() *model {
	return &model{map[dayKey]dayRow{}, map[hourKey]hourRow{}, map[tsKey]locRow{}, map[siteKey]siteRow{}}
}

func laterRecv(a, b time.Time) int { return a.Compare(b) }

func (m *model) add(g genMsg) {
	for _, r := range g.days {
		if c, ok := m.days[r.dayKey]; !ok || laterRecv(r.recv, c.recv) > 0 || laterRecv(r.recv, c.recv) == 0 && r.total > c.total {
			m.days[r.dayKey] = r
		}
	}
	for _, r := range g.hours {
		if c, ok := m.hours[r.hourKey]; !ok || laterRecv(r.recv, c.recv) > 0 || laterRecv(r.recv, c.recv) == 0 && r.secs > c.secs {
			m.hours[r.hourKey] = r
		}
	}
	for _, r := range g.locs {
		c, ok := m.locs[r.tsKey]
		tie := laterRecv(r.recv, c.recv) == 0
		if !ok || laterRecv(r.recv, c.recv) > 0 || tie && (r.lat > c.lat || r.lat == c.lat && r.lon > c.lon) {
			m.locs[r.tsKey] = r
		}
	}
	for _, r := range g.sites {
		if c, ok := m.sites[r.siteKey]; !ok || laterRecv(r.recv, c.recv) > 0 || laterRecv(r.recv, c.recv) == 0 && r.accessed && !c.accessed {
			m.sites[r.siteKey] = r
		}
	}
}

func (m *model) tables() tables {
	var out tables
	for _, r := range m.days {
		out.Days = append(out.Days, r.String())
	}
	for _, r := range m.hours {
		out.Hours = append(out.Hours, r.String())
	}
	for _, r := range m.locs {
		out.Locs = append(out.Locs, r.String())
	}
	for _, r := range m.sites {
		out.Sites = append(out.Sites, r.String())
	}
	out.sort()
	return out
}

// propIterations is the number of random histories per engine; set
// HEARTH_PROP_ITER for a longer run.
func propIterations(t *testing.T) int {
	if s := os.Getenv("HEARTH_PROP_ITER"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("HEARTH_PROP_ITER: %v", err)
		}
		return n
	}
	if testing.Short() {
		return 10
	}
	return 40
}

// Ensure that any sequence of batches, in any order, with replays and
// duplicates inside batches, ends in the tables the model predicts: the
// newest message per key applied once.
func TestStore_Property_AnyOrderSameTables(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		s := open(t, e.dsn(t), testOptions())
		homeA, _, err := s.AddHome(ctx, "A")
		if err != nil {
			t.Fatal(err)
		}
		homeB, _, _ := s.AddHome(ctx, "B")
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		r := rand.New(rand.NewPCG(seed, 1))
		for it := range propIterations(t) {
			known := map[string]string{}
			var children []string
			for i, home := range []string{homeA, homeA, homeB} {
				c, err := s.AddChild(ctx, home, fmt.Sprintf("p%d-%d", it, i))
				if err != nil {
					t.Fatal(err)
				}
				known[c] = home
				children = append(children, c)
			}
			g := &propGen{r: r, children: append(children, fmt.Sprintf("p%d-unknown", it))}
			if err := runHistory(t, s, g, known, homeA, homeB); err != nil {
				t.Fatalf("iteration %d (seed %d): %v", it, seed, err)
			}
		}
	})
}

// runHistory applies a random history and compares the tables of its
// children with the model.
func runHistory(t *testing.T, s Store, g *propGen, known map[string]string, homeA, homeB string) error {
	ctx := context.Background()
	r := g.r
	msgs := make([]genMsg, 5+r.IntN(30))
	for i := range msgs {
		msgs[i] = g.next()
	}
	// Every message at least once, some more often, in a random order.
	seq := append([]genMsg{}, msgs...)
	for range r.IntN(len(msgs)) {
		seq = append(seq, msgs[r.IntN(len(msgs))])
	}
	r.Shuffle(len(seq), func(i, j int) { seq[i], seq[j] = seq[j], seq[i] })
	var batches [][]genMsg
	for len(seq) > 0 {
		n := min(len(seq), 1+r.IntN(12))
		batch := append([]genMsg{}, seq[:n]...)
		if r.IntN(3) == 0 { // a duplicate inside the batch
			batch = append(batch, batch[r.IntN(len(batch))])
		}
		batches = append(batches, batch)
		seq = seq[n:]
		if r.IntN(4) == 0 { // an earlier batch replayed
			batches = append(batches, batches[r.IntN(len(batches))])
		}
	}
	m := newModel()
	for _, batch := range batches {
		home := []string{homeA, "", homeB}[r.IntN(3)]
		in := make([]hearth.Message, len(batch))
		for i, gm := range batch {
			in[i] = gm.msg
		}
		res, err := s.Apply(ctx, home, in)
		if err != nil {
			return err
		}
		for i, gm := range batch {
			owner, ok := known[gm.msg.ChildHash]
			accept := ok && (home == "" || owner == home) && !gm.tooOld
			if got := res[i].Status == StatusOK; got != accept {
				return fmt.Errorf("message for %s via home %q: %+v, want accepted=%v", gm.msg.ChildHash, home, res[i], accept)
			}
			if accept {
				m.add(gm)
			}
		}
	}
	var children []string
	for c := range known {
		children = append(children, c)
	}
	got := dump(t, s, children...)
	if d := got.diff(m.tables()); d != "" {
		return fmt.Errorf("tables differ from the model after %d batches:\n%s", len(batches), d)
	}
	return nil
}
