package central

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/guardianai/hearth/central/fleet"
	"github.com/valyala/fasthttp"
)

// The fleet's health in series whose number does not grow with the fleet:
// counts and extremes over every home, computed from the store (what any
// replica last wrote, at most a minute old) merged with this replica's
// live reports. Which homes make up a count is GET /fleet on the admin
// listener and the console's home list.

// FleetReply is the body of GET /fleet: the homes behind each aggregate
// series, so an alert can be followed to the homes that raised it.
type FleetReply struct {
	Now   time.Time `json:"now"`
	Homes int       `json:"homes"` // homes whose token is not revoked
	// NotSeen10m and NotSeen1h: homes whose edge was seen once but not for
	// 10 min / 1 h (NotSeen10m includes NotSeen1h); NeverSeen: not yet.
	NotSeen10m []FleetHome `json:"not_seen_10m"`
	NotSeen1h  []FleetHome `json:"not_seen_1h"`
	NeverSeen  []FleetHome `json:"never_seen"`
	// Backlog: homes whose edge reported a backlog, oldest first.
	Backlog []FleetHome `json:"backlog"`
	// DeadLetters: homes whose edge holds dead letters.
	DeadLetters []FleetHome `json:"dead_letters"`
	// ClockOff: homes whose edge clock was off by more than clock_tolerance
	// when last measured; ClockUnknown: homes whose last batch to this
	// replica had a sent_at too far off to measure.
	ClockOff     []FleetHome `json:"clock_off"`
	ClockUnknown []FleetHome `json:"clock_unknown"`
	// Versions counts the edges by the version they report (the
	// maxVersions most common; the rest as "other").
	Versions map[string]int `json:"versions"`
}

// FleetHome names one home with what put it in a list.
type FleetHome struct {
	ID                   string    `json:"id"`
	Name                 string    `json:"name"`
	LastSeen             time.Time `json:"last_seen,omitzero"`
	BacklogMessages      int64     `json:"backlog_messages"`
	BacklogOldestSeconds int64     `json:"backlog_oldest_seconds"`
	DeadLetters          int64     `json:"dead_letters"`
	ClockOffsetSeconds   float64   `json:"clock_offset_seconds"`
}

// maxVersions bounds the series of hearth_central_edge_versions: edges
// choose their version header.
const maxVersions = 20

// versionOther labels the edges of versions beyond the maxVersions most common.
const versionOther = "other"

// buildFleet sorts homes into the lists of FleetReply at now.
func buildFleet(homes []fleet.Home, now time.Time, tolerance time.Duration, unknown map[string]bool) FleetReply {
	r := FleetReply{Now: now.UTC(), Versions: map[string]int{}}
	for _, h := range homes {
		if h.Edge.Revoked {
			continue
		}
		r.Homes++
		f := FleetHome{ID: h.ID, Name: h.Name, LastSeen: h.LastSeen, BacklogMessages: h.Edge.BacklogMessages,
			BacklogOldestSeconds: h.Edge.BacklogOldestSeconds, DeadLetters: h.Edge.DeadLetters, ClockOffsetSeconds: h.ClockOffset.Seconds()}
		switch age := now.Sub(h.LastSeen); {
		case h.LastSeen.IsZero():
			r.NeverSeen = append(r.NeverSeen, f)
		case age > time.Hour:
			r.NotSeen1h = append(r.NotSeen1h, f)
			r.NotSeen10m = append(r.NotSeen10m, f)
		case age > 10*time.Minute:
			r.NotSeen10m = append(r.NotSeen10m, f)
		}
		if h.Edge.BacklogMessages > 0 || h.Edge.BacklogOldestSeconds > 0 {
			r.Backlog = append(r.Backlog, f)
		}
		if h.Edge.DeadLetters > 0 {
			r.DeadLetters = append(r.DeadLetters, f)
		}
		if !h.LastSeen.IsZero() && h.ClockOffset.Abs() > tolerance {
			r.ClockOff = append(r.ClockOff, f)
		}
		if unknown[h.ID] {
			r.ClockUnknown = append(r.ClockUnknown, f)
		}
		if !h.LastSeen.IsZero() {
			r.Versions[h.Edge.Version]++
		}
	}
	sort.SliceStable(r.Backlog, func(i, j int) bool { return r.Backlog[i].BacklogOldestSeconds > r.Backlog[j].BacklogOldestSeconds })
	r.Versions = capVersions(r.Versions)
	return r
}

// capVersions keeps the maxVersions most common versions and counts the
// rest as "other".
func capVersions(v map[string]int) map[string]int {
	if len(v) <= maxVersions {
		return v
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		return v[names[i]] > v[names[j]] || v[names[i]] == v[names[j]] && names[i] < names[j]
	})
	out := map[string]int{}
	for i, k := range names {
		if i < maxVersions {
			out[k] = v[k]
		} else {
			out[versionOther] += v[k]
		}
	}
	return out
}

// fleetCache computes the FleetReply at most every fleetEvery: several
// scrapers and /fleet callers at once read the homes once. (Reading them
// costs one query of the homes table: about a millisecond per thousand.)
type fleetCache struct {
	mu    sync.Mutex
	at    time.Time
	reply FleetReply
	err   error
}

const fleetEvery = 2 * time.Second

// fleet returns the fleet's state, from the cache when fresh.
func (s *Server) fleet(now time.Time) (FleetReply, error) {
	c := &s.fleetCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now.Sub(c.at) < fleetEvery && c.err == nil {
		return c.reply, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(s.cfg.StoreTimeout, 5*time.Second))
	defer cancel()
	homes, err := fleet.Homes(ctx, s.store, s.LiveEdges())
	if err != nil {
		c.err = err
		return c.reply, err // the last good view, for the metrics
	}
	c.at, c.err = now, nil
	c.reply = buildFleet(homes, now, s.cfg.ClockTolerance, s.guard.edges.clockUnknown())
	return c.reply, nil
}

// serveFleet answers GET /fleet on the admin listener.
func (s *Server) serveFleet(ctx *fasthttp.RequestCtx) {
	r, err := s.fleet(time.Now())
	if err != nil {
		s.readFailed(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, nonNilFleet(r))
}

// nonNilFleet makes empty lists [] rather than null.
func nonNilFleet(r FleetReply) FleetReply {
	for _, l := range []*[]FleetHome{&r.NotSeen10m, &r.NotSeen1h, &r.NeverSeen, &r.Backlog, &r.DeadLetters, &r.ClockOff, &r.ClockUnknown} {
		*l = nonNil(*l)
	}
	return r
}
