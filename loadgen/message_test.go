package loadgen

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that every kind the generator makes passes the domain's validation
// and travels in well-formed frames and bodies.
func TestGenerator_DataIsValid(t *testing.T) {
	w := hearth.Window{Now: time.Now(), MaxAge: hearth.DefaultRetention, MaxFuture: hearth.DefaultMaxFuture}
	for _, mix := range []Mix{MixLocation, MixScreenTime, MixSiteAccess, MixMixed} {
		g := &generator{phone: 7, run: "abc", mix: mix, clock: newClock()}
		kinds := map[string]int{}
		for range 30 {
			m := g.next()
			kinds[m.kind]++
			if c, err := hearth.Check(hearth.Kind(m.kind), m.data, hearth.Rules{Mode: hearth.ModeStrict, Window: w}); err != nil || len(c.Notes) > 0 {
				t.Fatalf("%s: %s invalid or not canonical: %v %v\n%s", mix, m.kind, err, c.Notes, m.data)
			}
			var f struct {
				Type string          `json:"type"`
				ID   uint64          `json:"id"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(m.frame(), &f); err != nil || f.Type != m.kind || f.ID != m.id || string(f.Data) != string(m.data) {
				t.Fatalf("frame %s: %+v %v", m.frame(), f, err)
			}
			var b map[string]json.RawMessage
			if err := json.Unmarshal(m.body([]byte(`"c\"1"`)), &b); err != nil || string(b["child_hash"]) != `"c\"1"` || string(b[m.kind+"_info"]) != string(m.data) {
				t.Fatalf("body %s: %v", m.body([]byte(`"c\"1"`)), err)
			}
		}
		if mix == MixMixed && len(kinds) != 3 || mix != MixMixed && kinds[string(mix)] != 30 {
			t.Errorf("%s made %v", mix, kinds)
		}
	}
}

// Ensure that phones sharing a child never make two messages with the same
// key, so that every message is its own row downstream.
func TestGenerator_KeysUnique(t *testing.T) {
	clk := newClock()
	seen := map[string]bool{}
	for phone := 1; phone <= 3; phone++ {
		g := &generator{phone: phone, run: "r", mix: MixMixed, clock: clk}
		for range 3000 {
			m := g.next()
			k := m.kind + "\t" + m.key
			if seen[k] {
				t.Fatalf("duplicate key %q", k)
			}
			seen[k] = true
		}
	}
}

// Ensure that AckKey recovers the generator's key from the data, also after
// a server re-encoded the timestamps.
func TestAckKey_MatchesGenerator(t *testing.T) {
	g := &generator{phone: 1, run: "r", mix: MixMixed, clock: newClock()}
	for range 30 {
		m := g.next()
		got, err := AckKey(m.kind, m.data)
		if err != nil || got != m.key {
			t.Fatalf("AckKey(%s) = %q, %v; want %q", m.data, got, err, m.key)
		}
	}
	a, _ := AckKey("location", []byte(`{"timestamp":"2025-12-10T11:30:00.1+01:00","latitude":1,"longitude":2}`))
	b, _ := AckKey("location", []byte(`{"timestamp":"2025-12-10T10:30:00.100000Z"}`))
	if a != b || a != "2025-12-10T10:30:00.100000Z" {
		t.Errorf("normalised keys %q and %q differ", a, b)
	}
	for _, bad := range []struct{ kind, data string }{
		{"location", `{"timestamp":"yesterday"}`}, {"site_access", `{"logs":[]}`},
		{"screen_time", `{"date":"2025-12-10"}`}, {"weather", `{}`}, {"location", `[`},
	} {
		if k, err := AckKey(bad.kind, []byte(bad.data)); err == nil {
			t.Errorf("AckKey(%s, %s) = %q, want an error", bad.kind, bad.data, k)
		}
	}
}

// Ensure that the clock never hands out a timestamp twice, even when the
// wall clock stands still and many goroutines ask at once.
func TestClock_Distinct(t *testing.T) {
	frozen := time.Date(2025, 12, 10, 10, 30, 0, 0, time.UTC)
	clk := &clock{now: func() time.Time { return frozen }}
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s := clk.next().Format(TimeLayout)
				mu.Lock()
				if seen[s] {
					t.Errorf("timestamp %s twice", s)
				}
				seen[s] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if last := clk.next(); last.Sub(frozen) != 8000*time.Microsecond || !strings.HasSuffix(last.Format(TimeLayout), "Z") {
		t.Errorf("clock ran to %v, want 8 ms past %v in UTC", last, frozen)
	}
}
