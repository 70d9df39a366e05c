package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/guardianai/hearth"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Roster is the home's children as central last listed them, cached in a
// file so that an edge restarted while offline still refuses unknown
// children. It implements ingest.Roster. Until the first sync, without a
// cache, it knows no list and accepts every child.
type Roster struct {
	path string
	log  *slog.Logger

	mu       sync.RWMutex
	children map[string]struct{}
	known    bool // children holds a list (from central or the cache)
}

// rosterFile is the cache's content.
type rosterFile struct {
	Children []string  `json:"children"`
	SyncedAt time.Time `json:"synced_at"`
}

// OpenRoster returns the roster cached at path. A missing file means no
// list yet; an unreadable one is logged and ignored (the next sync
// rewrites it), so a bad cache never keeps the daemon from starting.
func OpenRoster(path string, log *slog.Logger) *Roster {
	r := &Roster{path: path, log: log}
	b, err := os.ReadFile(path)
	var rf rosterFile
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("no roster from central yet; accepting any child until the first sync", "cache", path)
	case err != nil:
		log.Error("cannot read the cached roster; accepting any child until the first sync", "cache", path, "err", err)
	case json.Unmarshal(b, &rf) != nil || rf.Children == nil:
		log.Error("cached roster is malformed; accepting any child until the first sync", "cache", path)
	default:
		r.set(rf.Children)
		log.Info("roster loaded from cache", "children", len(rf.Children), "synced_at", rf.SyncedAt)
	}
	return r
}

// Known implements ingest.Roster.
func (r *Roster) Known(_ context.Context, hash string) (bool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.known {
		return true, nil
	}
	_, ok := r.children[hash]
	return ok, nil
}

// Size is the number of children in the list (0 while none is known).
func (r *Roster) Size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.children)
}

// Replace makes children the roster and writes the cache. The roster in
// memory is replaced even when the cache cannot be written (the error says so).
func (r *Roster) Replace(children []string, at time.Time) error {
	r.set(children)
	b, err := json.Marshal(rosterFile{Children: children, SyncedAt: at.UTC()})
	if err != nil {
		panic("BUG: marshal roster: " + err.Error())
	}
	if err := writeFileAtomic(r.path, b); err != nil {
		return fmt.Errorf("write roster cache: %w", err)
	}
	return nil
}

func (r *Roster) set(children []string) {
	m := make(map[string]struct{}, len(children))
	for _, c := range children {
		m[c] = struct{}{}
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
	before := f.roster.Size()
	// The gauge first: whoever sees the new roster sees its size too.
	f.metrics.rosterChildren.Set(float64(len(rr.Children)))
	err = f.roster.Replace(rr.Children, time.Now())
	if len(rr.Children) != before {
		f.log.Info("roster synced from central", "children", len(rr.Children))
	}
	return err
}
