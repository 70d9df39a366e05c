package household

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the tally's day boundaries.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestTally_CountsSurviveARestartTheSameDay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page-counts.json")
	clk := &fakeClock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.Local)}
	ta, err := OpenTally(path, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	ta.Stored("alice", "location", 3)
	ta.Stored("alice", "screen_time", 1)
	ta.Refused("bob", "future")
	ta.Refused("bob", "future")
	if err := ta.Save(); err != nil {
		t.Fatal(err)
	}
	clk.set(clk.now().Add(time.Hour))
	again, err := OpenTally(path, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	got := again.Today()
	if len(got) != 2 || got[0].Hash != "alice" || got[0].Stored["location"] != 3 || got[0].Stored["screen_time"] != 1 {
		t.Fatalf("alice after reopen: %+v", got)
	}
	if got[1].Refused["future"] != 2 || got[1].LastRefusal != "future" {
		t.Fatalf("bob after reopen: %+v", got[1])
	}
}

func TestTally_NewDayStartsNewCountsButKeepsLastMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "page-counts.json")
	clk := &fakeClock{t: time.Date(2026, 11, 29, 23, 59, 0, 0, time.Local)}
	ta, _ := OpenTally(path, clk.now)
	ta.Stored("alice", "location", 5)
	ta.Refused("bob", "too_old")
	last := clk.now()
	clk.set(last.Add(2 * time.Minute)) // past midnight, local time
	got := ta.Today()
	if len(got) != 1 || got[0].Hash != "alice" || got[0].Stored["location"] != 0 || !got[0].Last.Equal(last) {
		t.Fatalf("after midnight: %+v", got)
	}
	if err := ta.Save(); err != nil {
		t.Fatal(err)
	}
	// A file of yesterday read today holds no counts.
	ta.Stored("alice", "location", 1)
	_ = ta.Save()
	clk.set(clk.now().Add(25 * time.Hour))
	later, _ := OpenTally(path, clk.now)
	if n := len(later.Today()); n != 0 {
		t.Fatalf("counts of another day read back: %d children", n)
	}
}

func TestTally_BoundsChildrenAHostilePhoneInvents(t *testing.T) {
	ta, _ := OpenTally(filepath.Join(t.TempDir(), "c.json"), nil)
	for i := range maxChildren + 100 {
		ta.Refused(fmt.Sprintf("child-%04d", i), "unknown_child")
	}
	if n := len(ta.Today()); n != maxChildren {
		t.Fatalf("%d children kept, want %d", n, maxChildren)
	}
}

func TestTally_DamagedFileStartsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	ta, err := OpenTally(path, nil)
	if err != nil || len(ta.Today()) != 0 {
		t.Fatalf("damaged file: %v, %+v", err, ta)
	}
	ta.Stored("a", "location", 1)
	if err := ta.Save(); err != nil {
		t.Fatal(err)
	}
	back, _ := OpenTally(path, nil)
	if back.Today()[0].Stored["location"] != 1 {
		t.Fatal("saved counts not read back")
	}
}

func TestTally_SaveFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "c.json") // the directory does not exist yet
	ta, _ := OpenTally(path, nil)
	ta.Stored("a", "location", 1)
	if err := ta.Save(); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := ta.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("counts not saved after the failure: %v", err)
	}
}
