package central

import (
	"fmt"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store"
)

// Ensure that the fleet's lists put each home where its state says:
// not seen for 10 min (and 1 h), never seen, backlog oldest first, dead
// letters, clock off beyond the tolerance; that revoked homes are left
// out; and that versions beyond the 20 most common count as other.
func TestBuildFleet(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	home := func(id string, seen time.Duration, e store.EdgeState, offset time.Duration) fleet.Home {
		h := fleet.Home{Home: store.Home{ID: id, Name: "home " + id, ClockOffset: offset}, Edge: e}
		if seen >= 0 {
			h.LastSeen = now.Add(-seen)
		}
		return h
	}
	fresh := store.EdgeState{Version: "v1", BacklogMessages: -1, BacklogOldestSeconds: -1, DeadLetters: -1}
	homes := []fleet.Home{
		home("fresh", time.Minute, fresh, 0),
		home("quiet", 20*time.Minute, store.EdgeState{Version: "v1", BacklogMessages: 5, BacklogOldestSeconds: 60}, 0),
		home("gone", 2*time.Hour, store.EdgeState{Version: "v2", BacklogMessages: 900, BacklogOldestSeconds: 7200, DeadLetters: 3}, 0),
		home("new", -1, store.EdgeState{}, 0),
		home("skewed", time.Minute, fresh, time.Hour),
		home("revoked", 3*time.Hour, store.EdgeState{Revoked: true, DeadLetters: 9}, 0),
	}
	r := buildFleet(homes, now, 5*time.Second, map[string]bool{"fresh": true})
	ids := func(l []FleetHome) string {
		out := ""
		for _, h := range l {
			out += h.ID + " "
		}
		return out
	}
	for name, c := range map[string]struct{ got, want string }{
		"not seen 10m":  {ids(r.NotSeen10m), "quiet gone "},
		"not seen 1h":   {ids(r.NotSeen1h), "gone "},
		"never seen":    {ids(r.NeverSeen), "new "},
		"backlog":       {ids(r.Backlog), "gone quiet "},
		"dead letters":  {ids(r.DeadLetters), "gone "},
		"clock off":     {ids(r.ClockOff), "skewed "},
		"clock unknown": {ids(r.ClockUnknown), "fresh "},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", name, c.got, c.want)
		}
	}
	if r.Homes != 5 || r.Versions["v1"] != 3 || r.Versions["v2"] != 1 || len(r.Versions) != 2 {
		t.Errorf("homes %d, versions %v", r.Homes, r.Versions)
	}

	var many []fleet.Home
	for i := range maxVersions + 5 {
		many = append(many, home(fmt.Sprint(i), time.Minute, store.EdgeState{Version: fmt.Sprintf("v%02d", i)}, 0))
	}
	many = append(many, home("x", time.Minute, store.EdgeState{Version: "v00"}, 0))
	v := buildFleet(many, now, time.Second, nil).Versions
	if len(v) != maxVersions+1 || v["v00"] != 2 || v[versionOther] != 5 {
		t.Errorf("capped versions: %d series, v00 %d, other %d", len(v), v["v00"], v[versionOther])
	}
}
