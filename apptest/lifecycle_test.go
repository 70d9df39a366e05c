package apptest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store/pgtest"
)

// Ensure that a token rotated with the command line is honoured alike by
// two replicas on one PostgreSQL: the old token works on both through its
// grace period, both refuse it after a rotation without grace, and a
// revoke refuses every token on both; home list shows the edge that
// synced its roster with one of them.
func TestCentral_RotateToken_Replicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	home, tok := CentralAddHome(t, dsn, "replicated")
	a, b := StartCentral(t, dsn), StartCentral(t, dsn)
	roster := func(c *Central, tok string) int {
		return c.Do(t, "GET", hearth.PathEdgeRoster, tok, nil, map[string]string{hearth.HeaderEdgeID: "router-r", hearth.HeaderEdgeVersion: "2.0"}).Code
	}

	var rot struct{ Token string }
	CentralJSON(t, dsn, &rot, "home rotate-token", "--json", "--grace", "1h", home)
	for _, c := range []*Central{a, b} {
		if code := roster(c, tok); code != 200 {
			t.Fatalf("old token within its grace on %s: %d, want 200", c.URL, code)
		}
		if code := roster(c, rot.Token); code != 200 {
			t.Fatalf("new token on %s: %d", c.URL, code)
		}
	}
	var homes []map[string]any
	CentralJSON(t, dsn, &homes, "home list", "--json")
	if len(homes) != 1 || homes[0]["edge_id"] != "router-r" || homes[0]["edge_version"] != "2.0" || homes[0]["last_seen"] == nil ||
		homes[0]["old_token_accepted_until"] == nil {
		t.Fatalf("home list after roster syncs: %v", homes)
	}

	var rot2 struct{ Token string }
	out, errs, code := RunCentral(t, dsn, "home rotate-token", "--json", home)
	if code != 0 || json.Unmarshal([]byte(out), &rot2) != nil || !strings.Contains(errs, fleet.AuditRotate) {
		t.Fatalf("rotate-token without grace: %d %q %q", code, out, errs)
	}
	for _, c := range []*Central{a, b} {
		for _, old := range []string{tok, rot.Token} {
			if code := roster(c, old); code != 401 {
				t.Fatalf("a previous token after a rotation without grace on %s: %d, want 401", c.URL, code)
			}
		}
		if code := roster(c, rot2.Token); code != 200 {
			t.Fatalf("newest token on %s: %d", c.URL, code)
		}
	}

	if _, errs, code := RunCentral(t, dsn, "home revoke", home); code != 0 {
		t.Fatalf("revoke: %d %s", code, errs)
	}
	for _, c := range []*Central{a, b} {
		if code := roster(c, rot2.Token); code != 401 {
			t.Fatalf("token after revoke on %s: %d, want 401", c.URL, code)
		}
	}
}
