package central

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/guardianai/hearth"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/internal/testutil"
)

// testServer is a started Server on SQLite with one home and child.
type testServer struct {
	*Server
	url, admin string
	token      string
	child      string
}

func startTestServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.MaxBatchBytes = 4 << 10
	cfg.MaxBatchDecompressedBytes = 64 << 10
	if edit != nil {
		edit(&cfg)
	}
	st, err := store.OpenWith(context.Background(), cfg.DSN(), StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	home, token, err := st.AddHome(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	child, err := st.AddChild(ctx, home, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return &testServer{Server: s, url: "http://" + s.Addr(), admin: "http://" + s.AdminAddr(), token: token, child: child}
}

func (ts *testServer) post(t *testing.T, body []byte, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.url+hearth.PathEdgeBatches, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ts.token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func location(seq int, child string, recv time.Time) string {
	return fmt.Sprintf(`{"seq":%d,"child_hash":%q,"type":"location","received_at":%q,"via":"ws","data":{"timestamp":%q,"latitude":1,"longitude":2}}`,
		seq, child, recv.Format(time.RFC3339Nano), recv.Add(-time.Second).Format(time.RFC3339Nano))
}

// Ensure that a batch is answered per message and its size limits hold
// over HTTP: too large as sent, too large inflated, too many messages.
func TestServer_Batch(t *testing.T) {
	ts := startTestServer(t, func(c *Config) { c.MaxBatchMessages = 3 })
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s,%s]}`, now.Format(time.RFC3339Nano),
		location(1, ts.child, now), location(2, "nobody", now))
	code, reply, _ := ts.post(t, gz(t, body), map[string]string{"Content-Encoding": "gzip"})
	var br hearth.BatchReply
	if err := json.Unmarshal([]byte(reply), &br); code != 200 || err != nil {
		t.Fatalf("%d %s", code, reply)
	}
	if len(br.Results) != 2 || br.Results[0] != (hearth.BatchResult{Seq: 1, Status: "ok", Error: ""}) || br.Results[1] != (hearth.BatchResult{Seq: 2, Status: "rejected", Code: "unknown_child", Error: "unknown child"}) {
		t.Fatalf("results %+v", br.Results)
	}
	big := `{"sent_at":"2025-12-10T10:00:00Z","messages":[],"pad":"` + strings.Repeat("x", 8<<10) + `"}`
	if code, reply, _ := ts.post(t, []byte(big), nil); code != 413 || !strings.Contains(reply, "split") {
		t.Fatalf("body over max_batch_bytes: %d %s", code, reply)
	}
	bomb := gz(t, `{"sent_at":"2025-12-10T10:00:00Z","messages":[],"pad":"`+strings.Repeat("x", 1<<20)+`"}`)
	if code, reply, _ := ts.post(t, bomb, map[string]string{"Content-Encoding": "gzip"}); code != 413 || !strings.Contains(reply, "decompressed") {
		t.Fatalf("gzip bomb: %d %s", code, reply)
	}
	many := fmt.Sprintf(`{"sent_at":%q,"messages":[%s,%s,%s,%s]}`, now.Format(time.RFC3339), location(1, ts.child, now),
		location(2, ts.child, now), location(3, ts.child, now), location(4, ts.child, now))
	if code, reply, _ := ts.post(t, []byte(many), nil); code != 413 || !strings.Contains(reply, "at most 3") {
		t.Fatalf("too many messages: %d %s", code, reply)
	}
	if code, reply, _ := ts.post(t, []byte(`{"sent_at":"x"}`), nil); code != 400 || !strings.Contains(reply, "sent_at") || !strings.Contains(reply, `"scope":"batch"`) {
		t.Fatalf("malformed: %d %s (want a 400 of scope batch)", code, reply)
	}
	_, metrics := httpGet(t, ts.admin+"/metrics")
	for _, want := range []string{
		`hearth_central_batches_total{result="ok"} 1`,
		`hearth_central_batches_total{result="too_large"} 3`,
		`hearth_central_batches_total{result="bad_request"} 1`,
		`hearth_central_messages_total{code="unknown_child",status="rejected"} 1`,
		`hearth_central_messages_total{code="none",status="ok"} 1`,
		`hearth_central_apply_seconds_count 1`,
		`hearth_central_edges_clock_off 0`,
		`hearth_ingest_connections 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// Ensure that /readyz follows the store and the server's life.
func TestServer_Ready(t *testing.T) {
	ts := startTestServer(t, nil)
	if code, body := httpGet(t, ts.admin+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code, _ := httpGet(t, ts.admin+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	ts.ready.Store(false)
	if code, _ := httpGet(t, ts.admin+"/readyz"); code != 503 {
		t.Fatalf("readyz while not ready: %d", code)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Ensure that a Shutdown right after Start leaves nothing listening, even
// when the serving goroutines had not started yet.
func TestServer_ShutdownRightAfterStart(t *testing.T) {
	for range 20 {
		ts := startTestServer(t, nil)
		if err := ts.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{ts.Addr(), ts.AdminAddr()} {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Fatalf("%s still accepts connections after Shutdown", addr)
			}
		}
	}
}

// Ensure that an edge clock too far off to represent (sent_at in year 1
// or 9999) never refuses data: its times become central's now, the home
// is flagged, and a NUL in a child hash rejects only its message.
func TestServer_Batch_UnrepresentableClockAndBadHashes(t *testing.T) {
	ts := startTestServer(t, nil)
	now := time.Now().UTC()
	for i, sent := range []string{"0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"} {
		body := fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s,%s]}`, sent,
			location(2*i+1, ts.child, now), strings.Replace(location(2*i+2, "badXhash", now), "X", `\u0000`, 1))
		code, reply, _ := ts.post(t, []byte(body), nil)
		var br hearth.BatchReply
		if err := json.Unmarshal([]byte(reply), &br); code != 200 || err != nil || len(br.Results) != 2 {
			t.Fatalf("sent_at %s: %d %s", sent, code, reply)
		}
		if br.Results[0].Status != "ok" || br.Results[1].Status != "rejected" || !strings.Contains(br.Results[1].Error, "child_hash") {
			t.Fatalf("sent_at %s: results %+v", sent, br.Results)
		}
	}
	locs, err := ts.store.Locations(context.Background(), ts.child, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil || len(locs) != 1 {
		t.Fatalf("locations %v %v", locs, err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error { // the fleet's view is cached for 2 s
		if _, metrics := httpGet(t, ts.admin+"/metrics"); !strings.Contains(metrics, `hearth_central_edges_clock_unknown 1`) {
			return fmt.Errorf("home not flagged:\n%s", testutil.GrepLines(metrics, "clock"))
		}
		return nil
	})
}

// Ensure that a message the edge stamped on central's clock (synced) is
// not shifted again by the batch's clock offset, while an unsynced one is.
func TestServer_Batch_SyncedNotShifted(t *testing.T) {
	ts := startTestServer(t, nil)
	now := time.Now().UTC()
	fast := now.Add(time.Hour) // the edge's wall clock runs an hour ahead
	synced := fmt.Sprintf(`{"seq":1,"child_hash":%q,"type":"location","received_at":%q,"via":"ws","synced":true,"data":{"timestamp":%q,"latitude":1,"longitude":2}}`,
		ts.child, now.Add(-time.Minute).Format(time.RFC3339Nano), now.Add(-2*time.Minute).Format(time.RFC3339Nano))
	unsynced := fmt.Sprintf(`{"seq":2,"child_hash":%q,"type":"location","received_at":%q,"via":"ws","data":{"timestamp":%q,"latitude":1,"longitude":2}}`,
		ts.child, fast.Add(-time.Minute).Format(time.RFC3339Nano), now.Add(-3*time.Minute).Format(time.RFC3339Nano))
	body := fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s,%s]}`, fast.Format(time.RFC3339Nano), synced, unsynced)
	if code, reply, _ := ts.post(t, []byte(body), nil); code != 200 || strings.Count(reply, `"ok"`) != 2 {
		t.Fatalf("%d %s", code, reply)
	}
	b, err := DecodeBatch([]byte(body), "", BatchLimits{MaxDecompressed: 1 << 20, MaxMessages: 10})
	if err != nil || !b.Messages[0].Synced || b.Messages[1].Synced {
		t.Fatalf("decoded synced flags %+v, %v", b.Messages, err)
	}
	clock := MeasureEdgeClock(b.SentAt, now, 5*time.Second)
	msgs, _, _ := PrepareMessages(b.Messages, clock, hearth.DefaultRetention)
	if want := now.Add(-time.Minute); !msgs[0].ReceivedAt.Equal(want) {
		t.Errorf("synced received_at %s, want %s unshifted", msgs[0].ReceivedAt, want)
	}
	if want := now.Add(-time.Minute); msgs[1].ReceivedAt.Sub(want).Abs() > time.Second {
		t.Errorf("unsynced received_at %s, want about %s (shifted by the hour)", msgs[1].ReceivedAt, want)
	}
}
