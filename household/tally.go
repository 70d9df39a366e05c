// Package household is the household's page: a small, password-protected
// page on the home network that says in plain words whether hearth works —
// phones connected, what each child's phone sent today, what was refused
// and why, the backlog, the link to central and the dead letters.
package household

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/guardianai/hearth"
)

// Tally counts, per child, today's stored messages by kind and today's
// refusals by reason, in the edge's time zone. It survives a restart: Save
// writes it to a file that Open reads back (counts of a past day are
// dropped when read).
type Tally struct {
	path string
	now  func() time.Time

	mu       sync.Mutex
	day      string    // YYYY-MM-DD in the local zone; counts are of this day
	dayStart time.Time // the day's bounds, so that most calls compare times
	dayEnd   time.Time // instead of formatting a date
	children map[string]*childTally
	dirty    bool
}

type childTally struct {
	Last     time.Time      `json:"last,omitzero"`
	Stored   map[string]int `json:"stored,omitempty"`
	Refused  map[string]int `json:"refused,omitempty"`
	LastWhy  string         `json:"last_refusal,omitempty"`
	LastWhen time.Time      `json:"last_refusal_at,omitzero"`
}

type tallyFile struct {
	Day      string                 `json:"day"`
	Children map[string]*childTally `json:"children"`
}

// maxChildren bounds the children a tally keeps: refusals name whatever
// hash a phone claims, so a hostile client must not grow it without end.
const maxChildren = 256

// OpenTally reads the tally kept at path (a missing file is an empty
// tally); now is its clock, time.Now when nil.
func OpenTally(path string, now func() time.Time) (*Tally, error) {
	if now == nil {
		now = time.Now
	}
	t := &Tally{path: path, now: now, children: map[string]*childTally{}}
	t.setDay(now())
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the page's counts: %w", err)
	}
	var f tallyFile
	if err := json.Unmarshal(data, &f); err != nil {
		// The counts are a convenience: a damaged file starts a new day's
		// counts rather than stopping the daemon.
		return t, nil
	}
	if f.Day == t.day && f.Children != nil {
		t.children = f.Children
	}
	return t, nil
}

// setDay makes the local day of now the tally's day.
func (t *Tally) setDay(now time.Time) {
	y, m, d := now.Local().Date()
	t.dayStart = time.Date(y, m, d, 0, 0, 0, 0, time.Local)
	t.dayEnd = t.dayStart.AddDate(0, 0, 1)
	t.day = t.dayStart.Format(time.DateOnly)
}

// rollover starts a new day's counts when now is not in the tally's day;
// the last message time of each child is kept. Called with mu held.
func (t *Tally) rollover(now time.Time) {
	if !now.Before(t.dayStart) && now.Before(t.dayEnd) {
		return
	}
	day := t.day
	if t.setDay(now); t.day == day {
		return
	}
	t.dirty = true
	for h, c := range t.children {
		if c.Last.IsZero() {
			delete(t.children, h)
			continue
		}
		t.children[h] = &childTally{Last: c.Last}
	}
}

// child returns the tally of hash, creating it unless the tally is full.
func (t *Tally) child(hash string) *childTally {
	c := t.children[hash]
	if c == nil && len(t.children) < maxChildren {
		c = &childTally{}
		t.children[hash] = c
	}
	return c
}

// Stored counts n stored messages of kind from child.
func (t *Tally) Stored(child, kind string, n int) {
	t.update(child, func(c *childTally, now time.Time) {
		c.Stored = bump(c.Stored, kind, n)
		c.Last = now
	})
}

// StoredMessages counts stored messages, each by its child and kind, in
// one step (the sink reports a commit's messages together).
func (t *Tally) StoredMessages(msgs []hearth.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.rollover(now)
	for _, m := range msgs {
		if c := t.child(m.ChildHash); c != nil {
			c.Stored = bump(c.Stored, string(m.Kind), 1)
			c.Last, t.dirty = now, true
		}
	}
}

// Refused counts a refusal of a message from child with its reason.
func (t *Tally) Refused(child, reason string) {
	t.update(child, func(c *childTally, now time.Time) {
		c.Refused = bump(c.Refused, reason, 1)
		c.LastWhy, c.LastWhen = reason, now
	})
}

// update applies f to today's tally of child, unless the tally is full.
func (t *Tally) update(child string, f func(c *childTally, now time.Time)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.rollover(now)
	if c := t.child(child); c != nil {
		f(c, now)
		t.dirty = true
	}
}

// bump adds n to m[key], making m when it is nil.
func bump(m map[string]int, key string, n int) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[key] += n
	return m
}

// ChildDay is one child's counts of today.
type ChildDay struct {
	Hash          string
	Last          time.Time
	Stored        map[string]int
	Refused       map[string]int
	LastRefusal   string
	LastRefusalAt time.Time
}

// Today returns today's counts, children ordered by hash.
func (t *Tally) Today() []ChildDay {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rollover(t.now())
	out := make([]ChildDay, 0, len(t.children))
	for h, c := range t.children {
		out = append(out, ChildDay{Hash: h, Last: c.Last, Stored: clone(c.Stored), Refused: clone(c.Refused),
			LastRefusal: c.LastWhy, LastRefusalAt: c.LastWhen})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hash < out[j].Hash })
	return out
}

func clone(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Save writes the tally to its file when it changed since the last save,
// through a temporary file and a rename, so a crash leaves the old or the
// new counts, never half of them.
func (t *Tally) Save() error {
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	data, err := json.Marshal(tallyFile{Day: t.day, Children: t.children})
	t.dirty = false
	t.mu.Unlock()
	if err == nil {
		err = writeAtomic(t.path, data)
	}
	if err != nil {
		t.mu.Lock()
		t.dirty = true // try again at the next save
		t.mu.Unlock()
	}
	return err
}

// writeAtomic replaces path with data through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".page-counts-*")
	if err != nil {
		return fmt.Errorf("save the page's counts: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save the page's counts: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save the page's counts: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save the page's counts: %w", err)
	}
	return nil
}
