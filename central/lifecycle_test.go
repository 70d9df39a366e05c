package central

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/testutil"
)

// roster fetches the roster with tok and the edge's headers.
func roster(t *testing.T, base, tok string, headers map[string]string) (int, hearth.RosterReply) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+hearth.PathEdgeRoster, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r hearth.RosterReply
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("roster %q: %v", b, err)
		}
	}
	return resp.StatusCode, r
}

// Ensure that the roster carries the children's names, that a roster
// sync records the edge's state and last seen in the store, and that a
// rotated token is accepted through its grace period and refused after
// a rotation without one.
func TestServer_RosterNamesAndRotation(t *testing.T) {
	cfg := newTestConfig(t)
	s := startWith(t, cfg, nil, nil)
	ctx := context.Background()
	home, tok, err := s.store.AddHome(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.AddChild(ctx, home, "kid-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.AddChild(ctx, home, "kid-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.store.SetChildName(ctx, home, "kid-1", "Ada"); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr()
	code, r := roster(t, base, tok, map[string]string{hearth.HeaderEdgeID: "router-7", hearth.HeaderEdgeVersion: "9.9",
		hearth.HeaderBacklogMessages: "12", hearth.HeaderBacklogOldestSecs: "30", hearth.HeaderDeadLetters: "3"})
	if code != 200 || len(r.Children) != 2 || len(r.Names) != 1 || r.Names["kid-1"] != "Ada" {
		t.Fatalf("roster: %d %+v", code, r)
	}
	states, err := s.store.EdgeStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := states[home]
	if e.EdgeID != "router-7" || e.Version != "9.9" || e.BacklogMessages != 12 || e.BacklogOldestSeconds != 30 || e.DeadLetters != 3 ||
		time.Since(e.Seen) > time.Minute {
		t.Fatalf("edge state after a roster sync: %+v", e)
	}

	testutil.WaitFor(t, 10*time.Second, func() error { // the fleet's view is cached for 2 s
		if _, m := httpGet(t, "http://"+s.AdminAddr()+"/metrics"); !strings.Contains(m, `hearth_central_edges_dead_letters 3`) ||
			!strings.Contains(m, `hearth_central_edges_with_dead_letters 1`) {
			return fmt.Errorf("metrics lack the edge's dead letters")
		}
		return nil
	})

	tok2, err := s.store.RotateToken(ctx, home, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := roster(t, base, tok, nil); code != 200 {
		t.Fatalf("old token within its grace: %d, want 200", code)
	}
	if code, _ := roster(t, base, tok2, nil); code != 200 {
		t.Fatalf("new token: %d", code)
	}
	tok3, err := s.store.RotateToken(ctx, home, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []string{tok, tok2} {
		if code, _ := roster(t, base, old, nil); code != 401 {
			t.Fatalf("a token after a rotation without grace: %d, want 401", code)
		}
	}
	if code, _ := roster(t, base, tok3, nil); code != 200 {
		t.Fatalf("newest token: %d", code)
	}
}

// Ensure that the version is in /status, hearth_build_info and the ready
// log line.
func TestServer_Version(t *testing.T) {
	cfg := newTestConfig(t)
	cfg.Version = "7.7.7-test"
	var logs testutil.SyncBuffer
	s := startWith(t, cfg, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	admin := "http://" + s.AdminAddr()
	code, body := httpGet(t, admin+"/status")
	var st StatusReply
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Version != "7.7.7-test" || !st.Ready {
		t.Fatalf("/status: %d %s", code, body)
	}
	if _, m := httpGet(t, admin+"/metrics"); !strings.Contains(m, `hearth_build_info{component="hearth-central",goarch=`) ||
		!strings.Contains(m, `version="7.7.7-test"} 1`) {
		t.Fatalf("metrics lack hearth_build_info")
	}
	if l := logs.String(); !strings.Contains(l, `msg="hearth-central ready" version=7.7.7-test`) {
		t.Fatalf("ready line without the version:\n%s", l)
	}
}

// Ensure that over HTTP a child detached from its home leaves the home's
// roster, its edge's batch for it is refused as another home's child
// (with a reason, counted), the home's reader token may no longer read it,
// and the admin token still reads the data it kept.
func TestServer_DetachedChild(t *testing.T) {
	ts := startTestServer(t, func(c *Config) { c.AdminToken = testAdminToken })
	ctx := context.Background()
	home := ts.homeOf(t, ts.child)
	_, reader, err := ts.store.AddReader(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	batch := func(seq int) string {
		return fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s]}`, now.Format(time.RFC3339Nano), location(seq, ts.child, now.Add(time.Duration(-seq)*time.Second)))
	}
	if code, reply, _ := ts.post(t, []byte(batch(1)), nil); code != 200 || !strings.Contains(reply, `"ok"`) {
		t.Fatalf("batch before detach: %d %s", code, reply)
	}
	if err := ts.store.DetachChild(ctx, home, ts.child); err != nil {
		t.Fatal(err)
	}
	if code, r := roster(t, ts.url, ts.token, nil); code != 200 || len(r.Children) != 0 {
		t.Fatalf("roster after detach: %d %+v", code, r)
	}
	code, reply, _ := ts.post(t, []byte(batch(2)), nil)
	var br hearth.BatchReply
	if err := json.Unmarshal([]byte(reply), &br); code != 200 || err != nil || len(br.Results) != 1 ||
		br.Results[0].Code != "foreign_child" || !strings.Contains(br.Results[0].Error, "does not belong") {
		t.Fatalf("batch for the detached child: %d %s", code, reply)
	}
	if code, reply := do(t, nil, "GET", ts.url+locationsPath(ts.child), reader, nil); code != 403 {
		t.Fatalf("the former home's reader token: %d %s, want 403", code, reply)
	}
	if code, reply := do(t, nil, "GET", ts.url+locationsPath(ts.child), testAdminToken, nil); code != 200 || strings.Count(reply, `"latitude"`) != 1 {
		t.Fatalf("admin token reading the kept data: %d %s, want the one location sent before the detach", code, reply)
	}
	if _, m := httpGet(t, ts.admin+"/metrics"); !strings.Contains(m, `hearth_central_messages_total{code="foreign_child",status="rejected"} 1`) {
		t.Fatalf("the refusal is not counted:\n%s", testutil.GrepLines(m, "messages_total"))
	}
}
