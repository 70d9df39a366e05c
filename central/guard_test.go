package central

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/internal/testutil"
)

// guardedServer is a started Server on SQLite with homes (one child
// each), its log, and a count of token lookups in the database.
type guardedServer struct {
	*Server
	url, admin string
	tokens     []string
	homes      []string
	children   []string
	logs       *testutil.SyncBuffer
	lookups    *atomic.Int64
}

// lookupCounter counts HomeByToken calls: a throttled address must not
// reach the database.
type lookupCounter struct {
	store.Store
	lookups *atomic.Int64
}

func (c lookupCounter) HomeByToken(ctx context.Context, token string) (store.Home, error) {
	c.lookups.Add(1)
	return c.Store.HomeByToken(ctx, token)
}

type pooledCounter struct {
	lookupCounter
	store.Pooled
}

func startGuarded(t *testing.T, homes int, edit func(*Config)) *guardedServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	if edit != nil {
		edit(&cfg)
	}
	st, err := store.OpenWith(context.Background(), cfg.DSN(), StoreOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	g := &guardedServer{logs: &testutil.SyncBuffer{}, lookups: &atomic.Int64{}}
	for i := range homes {
		home, token, err := st.AddHome(context.Background(), fmt.Sprintf("home %d", i))
		if err != nil {
			t.Fatal(err)
		}
		child, err := st.AddChild(context.Background(), home, "")
		if err != nil {
			t.Fatal(err)
		}
		g.homes, g.tokens, g.children = append(g.homes, home), append(g.tokens, token), append(g.children, child)
	}
	var counted store.Store = lookupCounter{st, g.lookups}
	if p, ok := st.(store.Pooled); ok { // PostgreSQL: keep the pool's metrics
		counted = pooledCounter{lookupCounter{st, g.lookups}, p}
	}
	s, err := New(cfg, counted, slog.New(slog.NewJSONHandler(g.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	g.Server, g.url, g.admin = s, "http://"+s.Addr(), "http://"+s.AdminAddr()
	return g
}

// batchFor is a one-message batch for child.
func batchFor(child string, seq int) []byte {
	now := time.Now().UTC()
	return []byte(fmt.Sprintf(`{"edge_id":"e","sent_at":%q,"messages":[%s]}`, now.Format(time.RFC3339Nano), location(seq, child, now)))
}

type answer struct {
	code   int
	body   string
	header http.Header
}

// do sends one request with a bearer token ("" for none) and headers.
func (g *guardedServer) do(t *testing.T, method, path, token string, body io.Reader, hdr map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, g.url+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func (g *guardedServer) metrics(t *testing.T) string {
	t.Helper()
	_, m := httpGet(t, g.admin+"/metrics")
	return m
}

func (g *guardedServer) wantMetrics(t *testing.T, want ...string) {
	t.Helper()
	m := g.metrics(t)
	for _, w := range want {
		if !strings.Contains(m, w) {
			t.Errorf("metrics lack %q:\n%s", w, testutil.GrepLines(m, "hearth_central_"))
		}
	}
}

// stall opens a connection, sends head and the start of a body and
// leaves it waiting for the rest; closing it is the test's cleanup.
func (g *guardedServer) stall(t *testing.T, head string, start []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+string(start)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// rawPost sends head and body over a bare connection and reads the
// answer even when the server answers before the body is written and
// closes (net/http's client may then report only the broken pipe).
func (g *guardedServer) rawPost(t *testing.T, head string, body []byte) answer {
	t.Helper()
	conn := g.stall(t, head, nil)
	go conn.Write(body) // fails once the server has answered and closed: that is the point
	return readReply(t, conn)
}

// chunked encodes body as one chunk and the end of a chunked body.
func chunked(body string) []byte {
	return []byte(fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body))
}

func readReply(t *testing.T, conn net.Conn) answer {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

// waitBodyBytes polls the body budget until it holds n body bytes.
func (g *guardedServer) waitBodyBytes(t *testing.T, n int64) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if used := g.guard.budget.used.Load(); used != decodeFactor*n {
			return fmt.Errorf("body budget holds %d bytes, want %d (%d body bytes)", used, decodeFactor*n, n)
		}
		return nil
	})
}

// Ensure that unknown tokens are logged (rate-limited) with the edge's id,
// the token's first 4 characters only and the address; that after
// bad_token_limit of them the address gets 429 + Retry-After on the batch,
// roster and read APIs without a database lookup, even with a good token;
// and that each refusal is counted.
func TestServer_BadTokens_LoggedAndThrottled(t *testing.T) {
	g := startGuarded(t, 1, func(c *Config) { c.BadTokenLimit = 3 })
	guess := "Zq9xWr5tYu7iOp3aSd1fGh8jKl2zXc4vBn6mQw0eRt"
	edge := map[string]string{hearth.HeaderEdgeID: "router-7"}
	for i := range 3 {
		if a := g.do(t, "POST", hearth.PathEdgeBatches, guess, bytes.NewReader(batchFor(g.children[0], i)), edge); a.code != 401 || !strings.Contains(a.body, "unknown home token") {
			t.Fatalf("bad token %d: %d %s", i, a.code, a.body)
		}
	}
	log := g.logs.String()
	if !strings.Contains(log, `"msg":"token refused"`) || !strings.Contains(log, `"edge_id":"router-7"`) ||
		!strings.Contains(log, `"token_prefix":"Zq9x…"`) || !strings.Contains(log, `"remote":"127.0.0.1"`) {
		t.Errorf("log of a refused token lacks the edge, the token's prefix or the address:\n%s", log)
	}
	if strings.Contains(log, guess[:5]) {
		t.Errorf("the log shows more than 4 characters of a token:\n%s", log)
	}
	if strings.Count(log, `"msg":"token refused"`) != 1 || !strings.Contains(log, `"msg":"address throttled: too many unknown tokens"`) {
		t.Errorf("want one refused-token line (rate-limited) and the throttling:\n%s", log)
	}

	lookups := g.lookups.Load()
	for _, tc := range []struct {
		method, path, token string
	}{
		{"POST", hearth.PathEdgeBatches, guess},
		{"POST", hearth.PathEdgeBatches, g.tokens[0]}, // the address is throttled, whatever the token
		{"GET", hearth.PathEdgeRoster, g.tokens[0]},
		{"GET", PathChildren + g.children[0] + "/locations?from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z", g.tokens[0]},
	} {
		a := g.do(t, tc.method, tc.path, tc.token, bytes.NewReader(batchFor(g.children[0], 9)), nil)
		if a.code != 429 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "too many unknown tokens") {
			t.Errorf("%s %s while throttled: %d %q %s; want 429 with Retry-After", tc.method, tc.path, a.code, a.header.Get("Retry-After"), a.body)
		}
	}
	if n := g.lookups.Load(); n != lookups {
		t.Errorf("%d token lookups while throttled, want none", n-lookups)
	}
	g.wantMetrics(t,
		`hearth_central_batches_total{result="unauthorized"} 3`,
		`hearth_central_batches_total{result="throttled"} 2`,
		`hearth_central_limited_total{endpoint="batches",limit="bad_tokens"} 2`,
		`hearth_central_limited_total{endpoint="roster",limit="bad_tokens"} 1`,
		`hearth_central_limited_total{endpoint="read",limit="bad_tokens"} 1`,
		`hearth_central_read_requests_total{code="429"} 1`)
}

// Ensure that bad tokens on the read API count against the address too.
func TestServer_BadTokens_ReadAPI(t *testing.T) {
	g := startGuarded(t, 1, func(c *Config) { c.BadTokenLimit = 2 })
	path := PathChildren + g.children[0] + "/locations?from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z"
	for i, want := range []int{401, 401, 429} {
		if a := g.do(t, "GET", path, "guessing-a-token-here", nil, nil); a.code != want {
			t.Fatalf("read %d: %d %s, want %d", i, a.code, a.body, want)
		}
	}
}

// Ensure that a home flooding batches gets 429 + Retry-After (rate, then
// in flight) while another home's batches are all served, and that each
// refusal is counted by its limit.
func TestServer_HomeFairness(t *testing.T) {
	g := startGuarded(t, 3, func(c *Config) {
		c.HomeBatchRate, c.HomeBatchBurst, c.HomeBatchesInFlight = 0.1, 5, 2
	})
	noisy, quiet, slow := 0, 1, 2
	codes := map[int]int{}
	for i := range 20 {
		a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[noisy], bytes.NewReader(batchFor(g.children[noisy], i)), nil)
		codes[a.code]++
		if a.code == 429 && (a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "batches per second")) {
			t.Fatalf("noisy home refused without Retry-After or reason: %q %s", a.header.Get("Retry-After"), a.body)
		}
		if i%5 != 0 {
			continue
		}
		if b := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[quiet], bytes.NewReader(batchFor(g.children[quiet], i)), nil); b.code != 200 {
			t.Fatalf("quiet home's batch %d while the other floods: %d %s", i, b.code, b.body)
		}
	}
	// A token refills every 10 s: the burst of 5 is served, the rest
	// refused (unless this loop took over 100 s).
	if codes[200] < 5 || codes[429] < 10 || codes[200]+codes[429] != 20 {
		t.Fatalf("noisy home's answers by status %v: want its burst of 5 served, the rest 429", codes)
	}

	// Two batches of one home in flight (their bodies stall): a third
	// waits its turn.
	body := batchFor(g.children[slow], 99)
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", hearth.PathEdgeBatches, g.tokens[slow], len(body))
	stalled := []net.Conn{g.stall(t, head, body[:10]), g.stall(t, head, body[:10])}
	g.waitBodyBytes(t, 2*int64(len(body)))
	if a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[slow], bytes.NewReader(body), nil); a.code != 429 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "in flight") {
		t.Fatalf("third batch in flight: %d %q %s", a.code, a.header.Get("Retry-After"), a.body)
	}
	for _, c := range stalled {
		c.Write(body[10:])
		if a := readReply(t, c); a.code != 200 {
			t.Fatalf("stalled batch completed: %d %s", a.code, a.body)
		}
	}
	g.waitBodyBytes(t, 0)
	g.wantMetrics(t,
		fmt.Sprintf(`hearth_central_batches_total{result="rate_limited"} %d`, codes[429]),
		`hearth_central_batches_total{result="in_flight"} 1`,
		fmt.Sprintf(`hearth_central_limited_total{endpoint="batches",limit="home_rate"} %d`, codes[429]),
		`hearth_central_limited_total{endpoint="batches",limit="home_in_flight"} 1`)
}

// Ensure that while the body budget is spent (one batch holds it all),
// other batches and phones' HTTP posts get 503 + Retry-After, counted,
// and are served again once it is released; WebSockets and requests
// without bodies are not affected.
func TestServer_BodyBudget(t *testing.T) {
	const budget = 256 << 10
	g := startGuarded(t, 2, func(c *Config) {
		c.MaxBatchBytes, c.MaxBatchDecompressedBytes, c.MaxBodyMemory = budget, budget, decodeFactor*budget
	})
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", hearth.PathEdgeBatches, g.tokens[0], budget)
	hog := g.stall(t, head, []byte("{"))
	g.waitBodyBytes(t, budget)

	a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[1], bytes.NewReader(batchFor(g.children[1], 1)), nil)
	if a.code != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "busy") {
		t.Fatalf("batch while the budget is spent: %d %q %s", a.code, a.header.Get("Retry-After"), a.body)
	}
	phone := fmt.Sprintf(`{"child_hash":%q,"location_info":{"timestamp":%q,"latitude":1,"longitude":2}}`, g.children[1], time.Now().UTC().Format(time.RFC3339))
	p := g.do(t, "POST", "/api/ingest/", "", strings.NewReader(phone), nil)
	if p.code != 503 || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "busy") {
		t.Fatalf("phone while the budget is spent: %d %q %s", p.code, p.header.Get("Retry-After"), p.body)
	}
	if r := g.do(t, "GET", hearth.PathEdgeRoster, g.tokens[1], nil, nil); r.code != 200 {
		t.Fatalf("roster (no body) while the budget is spent: %d %s", r.code, r.body)
	}

	hog.Close()
	g.waitBodyBytes(t, 0)
	if a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[1], bytes.NewReader(batchFor(g.children[1], 1)), nil); a.code != 200 {
		t.Fatalf("batch after the budget was released: %d %s", a.code, a.body)
	}
	if p := g.do(t, "POST", "/api/ingest/", "", strings.NewReader(phone), nil); p.code != 200 || !strings.Contains(p.body, `"status":"ok"`) {
		t.Fatalf("phone after the budget was released: %d %s", p.code, p.body)
	}
	g.wantMetrics(t,
		`hearth_central_batches_total{result="busy"} 1`,
		`hearth_central_limited_total{endpoint="batches",limit="memory"} 1`,
		`hearth_central_limited_total{endpoint="phone_http",limit="memory"} 1`,
		`hearth_central_body_memory_bytes 0`)
}

// Ensure that with bodies streamed, phones' HTTP bodies keep the device
// protocol's limits and answers: a body declared or sent (chunked) past
// the read limit is 413, one between the frame limit and the read limit
// is read and refused by the device protocol with 413, a small one is
// stored; and that the budget is returned after each.
func TestServer_PhoneBodies_Streamed(t *testing.T) {
	g := startGuarded(t, 1, nil)
	ok := fmt.Sprintf(`{"child_hash":%q,"location_info":{"timestamp":%q,"latitude":1,"longitude":2}}`, g.children[0], time.Now().UTC().Format(time.RFC3339))
	if a := g.do(t, "POST", "/api/ingest/", "", strings.NewReader(ok), nil); a.code != 200 || !strings.Contains(a.body, `"status":"ok"`) {
		t.Fatalf("small body: %d %s", a.code, a.body)
	}
	if a := g.do(t, "POST", "/api/ingest", "", io.MultiReader(strings.NewReader(ok)), nil); a.code != 200 { // chunked
		t.Fatalf("small chunked body: %d %s", a.code, a.body)
	}
	pad := `{"child_hash":"x","pad":"` + strings.Repeat("x", 300<<10) + `"}`
	for name, a := range map[string]answer{
		"over the frame limit": g.do(t, "POST", "/api/ingest/", "", strings.NewReader(pad[:70<<10]), nil),
		// answered from the headers, before the body
		"declared over the read limit": readReply(t, g.stall(t, fmt.Sprintf("POST /api/ingest/ HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(pad)), []byte("{"))),
		"chunked over the read limit":  g.rawPost(t, "POST /api/ingest/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", chunked(pad)),
	} {
		if a.code != 413 || !strings.Contains(a.body, "too large") {
			t.Errorf("%s: %d %s, want 413", name, a.code, a.body)
		}
	}
	truncated := g.stall(t, fmt.Sprintf("POST /api/ingest/ HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(ok)), []byte(ok[:20]))
	truncated.(*net.TCPConn).CloseWrite()
	if a := readReply(t, truncated); a.code != 400 {
		t.Errorf("body cut short: %d %s, want 400", a.code, a.body)
	}
	g.waitBodyBytes(t, 0)
	g.wantMetrics(t, `hearth_ingest_refusals_total{reason="too_large",transport="http"} 3`)
}

// Ensure that a batch's body is refused as it streams: chunked past
// max_batch_bytes as sent (413), declared past it (413 before a byte is
// read), and not arriving within batch_read_timeout (408), each counted.
func TestServer_Batch_StreamRefusals(t *testing.T) {
	g := startGuarded(t, 1, func(c *Config) {
		c.MaxBatchBytes, c.MaxBatchDecompressedBytes = 4<<10, 64<<10
		c.BatchReadTimeout = 100 * time.Millisecond
	})
	batchHead := func(framing string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n\r\n", hearth.PathEdgeBatches, g.tokens[0], framing)
	}
	big := `{"sent_at":"2025-12-10T10:00:00Z","messages":[],"pad":"` + strings.Repeat("x", 8<<10) + `"}`
	if a := g.rawPost(t, batchHead("Transfer-Encoding: chunked"), chunked(big)); a.code != 413 || !strings.Contains(a.body, "as sent") {
		t.Fatalf("chunked body over max_batch_bytes: %d %s", a.code, a.body)
	}
	if a := readReply(t, g.stall(t, batchHead("Content-Length: 8388608"), []byte("{"))); a.code != 413 || !strings.Contains(a.body, "as sent") {
		t.Fatalf("declared over max_batch_bytes: %d %s", a.code, a.body)
	}
	if a := readReply(t, g.stall(t, batchHead("Content-Length: 100"), []byte(big[:10]))); a.code != 408 || !strings.Contains(a.body, "not received in time") {
		t.Fatalf("stalled body: %d %s", a.code, a.body)
	}
	cut := g.stall(t, batchHead("Content-Length: 100"), []byte(big[:10]))
	cut.(*net.TCPConn).CloseWrite()
	if a := readReply(t, cut); a.code != 400 || !strings.Contains(a.body, "could not be read") {
		t.Fatalf("body cut short: %d %s", a.code, a.body)
	}
	g.waitBodyBytes(t, 0)
	g.wantMetrics(t, `hearth_central_batches_total{result="too_large"} 2`, `hearth_central_batches_total{result="timeout"} 1`,
		`hearth_central_batches_total{result="bad_request"} 1`)
}

// Ensure that what an edge says of itself in its headers (batches and
// roster) is kept per home and shown as metrics, and that a request
// without them leaves the counts out.
func TestServer_EdgeReports(t *testing.T) {
	g := startGuarded(t, 2, nil)
	hdr := map[string]string{hearth.HeaderEdgeID: "router-1", hearth.HeaderEdgeVersion: "v1.2.3",
		hearth.HeaderBacklogMessages: "1234", hearth.HeaderBacklogOldestSecs: "56"}
	if a := g.do(t, "POST", hearth.PathEdgeBatches, g.tokens[0], bytes.NewReader(batchFor(g.children[0], 1)), hdr); a.code != 200 {
		t.Fatalf("batch: %d %s", a.code, a.body)
	}
	if a := g.do(t, "GET", hearth.PathEdgeRoster, g.tokens[1], nil, map[string]string{hearth.HeaderEdgeID: "nas"}); a.code != 200 {
		t.Fatalf("roster: %d %s", a.code, a.body)
	}
	h0, h1 := g.homes[0], g.homes[1]
	want := []string{ // one series each, whatever the number of homes
		`hearth_central_homes 2`,
		`hearth_central_edge_backlog_max_messages 1234`,
		`hearth_central_edge_backlog_oldest_max_seconds 56`,
		`hearth_central_edges_backlog_messages 1234`,
		`hearth_central_edges_not_seen{for="10m"} 0`,
		`hearth_central_edges_not_seen{for="ever"} 0`,
		`hearth_central_edge_versions{version="v1.2.3"} 1`,
		`hearth_central_edge_versions{version=""} 1`,
	}
	testutil.WaitFor(t, 10*time.Second, func() error { // the fleet's view is cached for 2 s
		m := g.metrics(t)
		for _, w := range want {
			if !strings.Contains(m, w) {
				return fmt.Errorf("metrics lack %q:\n%s", w, testutil.GrepLines(m, "hearth_central_edge"))
			}
		}
		if strings.Contains(m, h0) || strings.Contains(m, h1) {
			return fmt.Errorf("a home's id is in the metrics")
		}
		return nil
	})
	var f FleetReply
	if code, body := httpGet(t, g.admin+"/fleet"); code != 200 || json.Unmarshal([]byte(body), &f) != nil ||
		len(f.Backlog) != 1 || f.Backlog[0].ID != h0 || f.Backlog[0].BacklogMessages != 1234 || len(f.NotSeen10m) != 0 {
		t.Fatalf("/fleet: %d %s", code, body)
	}
	r := g.guard.edges.Reports()[h0]
	if r.EdgeID != "router-1" || r.Version != "v1.2.3" || r.BacklogMessages != 1234 || r.BacklogOldestSeconds != 56 || r.Seen.IsZero() {
		t.Fatalf("report %+v", r)
	}
}
