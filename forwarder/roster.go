package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/svc"
)

// Roster is the home's children as central last listed them, cached in a
// file so that an edge restarted while offline still knows them. It
// implements ingest.Roster. Until it knows a list (first sync, or the
// cache) it refuses every child with an error wrapping
// hearth.ErrUnavailable: the phone keeps its data and retries, and
// nothing is acked for a child central may not know.
//
// A child it does not list triggers a refresh from central before the
// refusal is final, so a child just added at central is accepted on its
// first try. At most one refresh runs at a time (other misses wait for
// it) and at most one starts per minRefreshGap, so a stranger's phone
// retrying in a loop cannot hammer central.
type Roster struct {
	path string
	log  *slog.Logger
	warn svc.LogLimiter

	mu       sync.RWMutex
	children map[string]string // hash → name ("" when central gives none)
	known    bool              // children holds a list (from central or the cache)

	refreshMu   sync.Mutex
	refresh     func(context.Context) error // fetches and replaces the list; nil: none
	refreshing  chan struct{}               // closed when the refresh in flight ends; nil when none
	lastRefresh time.Time                   // when the last refresh after a miss started
}

// Bounds of a refresh after a miss.
const (
	minRefreshGap  = 5 * time.Second
	refreshTimeout = 3 * time.Second
)

// errNoRoster is Known's answer while no list is known.
var errNoRoster = fmt.Errorf("no roster from central yet: %w", hearth.ErrUnavailable)

// rosterFile is the cache's content.
type rosterFile struct {
	Children []string          `json:"children"`
	Names    map[string]string `json:"names,omitempty"`
	SyncedAt time.Time         `json:"synced_at"`
}

// OpenRoster returns the roster cached at path. A missing file means no
// list yet; an unreadable one is logged and ignored (the next sync
// rewrites it), so a bad cache never keeps the daemon from starting.
func OpenRoster(path string, log *slog.Logger) *Roster {
	r := &Roster{path: path, log: log}
	b, err := os.ReadFile(path)
	var rf rosterFile
	const until = "; phones are told to retry later until the first sync with central"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("no roster from central yet"+until, "cache", path)
	case err != nil:
		log.Error("cannot read the cached roster"+until, "cache", path, "err", err)
	case json.Unmarshal(b, &rf) != nil || rf.Children == nil:
		log.Error("cached roster is malformed"+until, "cache", path)
	default:
		r.set(rf.Children, rf.Names)
		log.Info("roster loaded from cache", "children", len(rf.Children), "synced_at", rf.SyncedAt)
	}
	return r
}

// SetRefresh sets how the roster fetches central's list after a miss
// (the Forwarder sets it; it must call Replace). Without it a miss is final.
func (r *Roster) SetRefresh(fetch func(context.Context) error) {
	r.refreshMu.Lock()
	r.refresh = fetch
	r.refreshMu.Unlock()
}

// Known implements ingest.Roster. A miss, or no list at all, first
// refreshes the list from central (rate-limited); if the child is still
// missing, or the refresh fails, it is refused.
func (r *Roster) Known(ctx context.Context, hash string) (bool, error) {
	if ok, _ := r.lookup(hash); ok {
		return true, nil
	}
	r.refreshAfterMiss(ctx)
	ok, listed := r.lookup(hash)
	if !listed {
		return false, errNoRoster
	}
	return ok, nil
}

// lookup reports whether hash is listed and whether a list is known.
func (r *Roster) lookup(hash string) (ok, listed bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok = r.children[hash]
	return ok, r.known
}

// refreshAfterMiss fetches the list again unless one was started less
// than minRefreshGap ago; when one is in flight it waits for that one.
func (r *Roster) refreshAfterMiss(ctx context.Context) {
	done, mine := r.claimRefresh()
	switch {
	case mine:
		r.runRefresh(ctx, done)
	case done != nil:
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
}

// claimRefresh returns the refresh in flight, or starts one (mine) when
// allowed; (nil, false) means the miss is final at once.
func (r *Roster) claimRefresh() (done chan struct{}, mine bool) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	switch {
	case r.refresh == nil:
		return nil, false
	case r.refreshing != nil:
		return r.refreshing, false
	case !r.lastRefresh.IsZero() && time.Since(r.lastRefresh) < minRefreshGap:
		return nil, false
	}
	r.refreshing, r.lastRefresh = make(chan struct{}), time.Now()
	return r.refreshing, true
}

// runRefresh runs the claimed refresh, bounded by refreshTimeout and ctx,
// and releases whoever waits for it.
func (r *Roster) runRefresh(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	err := r.refresh(ctx)
	r.refreshMu.Lock()
	r.refreshing = nil
	close(done)
	r.refreshMu.Unlock()
	if err == nil {
		return
	}
	if ok, held := r.warn.Allow(30 * time.Second); ok {
		r.log.Warn("roster refresh after a miss failed; keeping the roster we have (the child is refused)", "err", err, "similar_lines_held_back", held)
	}
}

// Names returns the children's names central gave, by hash (children
// without a name are left out).
func (r *Roster) Names() map[string]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]string, len(r.children))
	for h, n := range r.children {
		if n != "" {
			out[h] = n
		}
	}
	return out
}

func clipRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// Size is the number of children in the list (0 while none is known).
func (r *Roster) Size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.children)
}

// Replace makes children the roster, with the names central gives them
// (for the household page), and writes the cache. The roster in memory is
// replaced even when the cache cannot be written (the error says so).
func (r *Roster) Replace(children []string, names map[string]string, at time.Time) error {
	r.set(children, names)
	b, err := json.Marshal(rosterFile{Children: children, Names: names, SyncedAt: at.UTC()})
	if err != nil {
		panic("BUG: marshal roster: " + err.Error())
	}
	if err := writeFileAtomic(r.path, b); err != nil {
		return fmt.Errorf("write roster cache: %w", err)
	}
	return nil
}

// maxNameRunes bounds a child's name as the edge keeps it.
const maxNameRunes = 64

func (r *Roster) set(children []string, names map[string]string) {
	m := make(map[string]string, len(children))
	for _, c := range children {
		m[c] = clipRunes(names[c], maxNameRunes)
	}
	r.mu.Lock()
	r.children, r.known = m, true
	r.mu.Unlock()
}

// writeFileAtomic replaces path by data: temp file, fsync, rename, fsync of
// the directory, so a crash leaves the old file or the new one, never half.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// syncRosterLoop fetches the roster at start and every RosterEvery; after
// a failure it tries again sooner, keeping the roster it has meanwhile.
func (f *Forwarder) syncRosterLoop(ctx context.Context) {
	if f.roster == nil {
		return
	}
	for ctx.Err() == nil {
		next := f.cfg.RosterEvery
		if err := f.syncRoster(ctx); err != nil && ctx.Err() == nil {
			next = min(next, 30*time.Second)
			f.log.Warn("roster sync failed; keeping the roster we have", "err", err, "retry_in", next)
		}
		sleep(ctx, next)
	}
}

// syncRoster fetches GET /v1/edge/roster once and replaces the roster.
func (f *Forwarder) syncRoster(ctx context.Context) error {
	r, err := f.do(ctx, http.MethodGet, hearth.PathEdgeRoster, nil)
	if err != nil {
		return fmt.Errorf("get roster: %w", err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("get roster: central answered %d: %s", r.status, reason(r.body))
	}
	var rr hearth.RosterReply
	if err := json.Unmarshal(r.body, &rr); err != nil || rr.Children == nil {
		return fmt.Errorf("get roster: answer is not {\"children\":[…]}: %s", reason(r.body))
	}
	f.centralRetention.Store(int64(rr.RetentionDays) * int64(24*time.Hour))
	before := f.roster.Size()
	// The gauge first: whoever sees the new roster sees its size too.
	f.metrics.rosterChildren.Set(float64(len(rr.Children)))
	err = f.roster.Replace(rr.Children, rr.Names, time.Now())
	if len(rr.Children) != before {
		f.log.Info("roster synced from central", "children", len(rr.Children))
	}
	return err
}
