package apptest

import (
	"encoding/json"
	"fmt"
	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/testutil"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/guardianai/hearth/ingest/ingesttest"
)

const centralAdminToken = "operator-admin-token-0123456789"

// batchMsg is one message of an edge batch as the edge sends it.
type batchMsg struct {
	Seq        uint64          `json:"seq"`
	ChildHash  string          `json:"child_hash"`
	Type       string          `json:"type"`
	ReceivedAt time.Time       `json:"received_at"`
	Via        string          `json:"via"`
	Data       json.RawMessage `json:"data"`
}

type batchResults struct {
	Results []struct {
		Seq    uint64 `json:"seq"`
		Status string `json:"status"`
		Error  string `json:"error"`
	} `json:"results"`
}

func batchBody(sentAt time.Time, msgs ...batchMsg) []byte {
	b, err := json.Marshal(map[string]any{"edge_id": "edge-test", "sent_at": sentAt, "messages": msgs})
	if err != nil {
		panic(err)
	}
	return b
}

func locMsg(seq uint64, child string, ts time.Time, lat float64, recv time.Time) batchMsg {
	data := fmt.Sprintf(`{"timestamp":%q,"latitude":%v,"longitude":2.5}`, ts.Format(time.RFC3339Nano), lat)
	return batchMsg{Seq: seq, ChildHash: child, Type: "location", ReceivedAt: recv, Via: "ws", Data: json.RawMessage(data)}
}

func screenMsg(seq uint64, child string, day time.Time, total int, recv time.Time) batchMsg {
	data := fmt.Sprintf(`{"date":%q,"total_screen_time":%d,"app_wise_data":{"com.example.app":{"9":600,"10":%d}}}`, day.Format("2006-01-02"), total, min(total, 3600))
	return batchMsg{Seq: seq, ChildHash: child, Type: "screen_time", ReceivedAt: recv, Via: "http", Data: json.RawMessage(data)}
}

func siteMsg(seq uint64, child string, ts time.Time, recv time.Time) batchMsg {
	data := fmt.Sprintf(`{"logs":[{"timestamp":%q,"url":"https://example.com","accessed":true},{"timestamp":%q,"url":"https://example.org","accessed":false}]}`,
		ts.Format(time.RFC3339), ts.Format(time.RFC3339))
	return batchMsg{Seq: seq, ChildHash: child, Type: "site_access", ReceivedAt: recv, Via: "ws", Data: json.RawMessage(data)}
}

// mustApply posts a batch and returns its per-message results.
func (c *Central) mustApply(t *testing.T, token string, body []byte) batchResults {
	t.Helper()
	r := c.PostBatch(t, token, body, true)
	if r.Code != 200 {
		t.Fatalf("batch: %d %s", r.Code, r.Body)
	}
	var res batchResults
	r.JSON(t, &res)
	return res
}

// statuses lists the results as "seq:status" strings.
func (r batchResults) statuses() string {
	var s []string
	for _, x := range r.Results {
		s = append(s, fmt.Sprintf("%d:%s", x.Seq, x.Status))
	}
	return strings.Join(s, " ")
}

// readLocations returns a child's locations over the last day via the read API.
func (c *Central) readLocations(t *testing.T, token, child string) []map[string]any {
	t.Helper()
	now := time.Now().UTC()
	q := url.Values{"from": {now.Add(-24 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}
	r := c.Do(t, "GET", "/v1/children/"+child+"/locations?"+q.Encode(), token, nil, nil)
	if r.Code != 200 {
		t.Fatalf("read locations: %d %s", r.Code, r.Body)
	}
	var out struct {
		Locations []map[string]any `json:"locations"`
	}
	r.JSON(t, &out)
	return out.Locations
}

// Ensure that a real hearth-central speaks every exchange of the seed
// protocol to phones away from home, with central's children as roster.
func TestCentral_Conformance(t *testing.T) {
	db := CentralSQLite(t)
	home, _ := CentralAddHome(t, db, "conformance")
	child := CentralAddChild(t, db, home, "")
	c := StartCentral(t, db)
	ingesttest.Run(t, ingesttest.Target{URL: c.URL, Known: child, Unknown: "no-such-child"})
	if st := CentralStats(t, db); st["locations"] == 0 || st["screen_time"] == 0 || st["site_access"] == 0 {
		t.Fatalf("stats after the suite: %v", st)
	}
}

// Ensure that batches are stored with one result per message, that a
// replay changes nothing, that a home cannot write another home's child,
// and that bad tokens, malformed and oversized batches are refused.
func TestCentral_Batches(t *testing.T) {
	db := CentralSQLite(t)
	homeA, tokA := CentralAddHome(t, db, "A")
	homeB, tokB := CentralAddHome(t, db, "B")
	a1 := CentralAddChild(t, db, homeA, "kid-a1")
	b1 := CentralAddChild(t, db, homeB, "")
	c := StartCentral(t, db, "--max-batch-bytes", "64KiB", "--max-batch-messages", "50", "--admin-token", centralAdminToken)

	now := time.Now().UTC().Truncate(time.Millisecond)
	batch := batchBody(now,
		locMsg(1041, a1, now.Add(-time.Minute), 40.7, now.Add(-50*time.Second)),
		screenMsg(1042, a1, now, 4000, now.Add(-40*time.Second)),
		siteMsg(1043, a1, now.Add(-2*time.Minute), now.Add(-30*time.Second)),
		locMsg(1044, "no-such-child", now.Add(-time.Minute), 1, now),
		batchMsg{Seq: 1045, ChildHash: a1, Type: "weather", ReceivedAt: now, Data: json.RawMessage(`{}`)},
		locMsg(1046, a1, now.AddDate(-2, 0, 0), 1, now),
	)
	res := c.mustApply(t, tokA, batch)
	if got := res.statuses(); got != "1041:ok 1042:ok 1043:ok 1044:rejected 1045:rejected 1046:rejected" {
		t.Fatalf("results %s (%+v)", got, res.Results)
	}
	for i, want := range map[int]string{3: "unknown child", 4: "unknown message type", 5: "retention"} {
		if !strings.Contains(res.Results[i].Error, want) {
			t.Errorf("result %d error %q, want %q", i, res.Results[i].Error, want)
		}
	}
	want := map[string]int64{"homes": 2, "children": 2, "screen_time": 1, "app_screen_time": 2, "locations": 1, "site_access": 2}
	checkStats := func(when string) {
		t.Helper()
		st := CentralStats(t, db)
		for k, n := range want {
			if st[k] != n {
				t.Fatalf("%s: stats %v, want %v", when, st, want)
			}
		}
	}
	checkStats("first batch")

	// A replay (the edge did not see the answer) is answered alike and changes nothing.
	if again := c.mustApply(t, tokA, batch); again.statuses() != res.statuses() {
		t.Fatalf("replay results %s, first %s", again.statuses(), res.statuses())
	}
	checkStats("replay")

	// Home B's token cannot write home A's child, not even newer data.
	foreign := c.mustApply(t, tokB, batchBody(now,
		locMsg(1, a1, now.Add(-time.Minute), -33.9, now),
		locMsg(2, a1, now.Add(-3*time.Minute), -33.9, now),
		locMsg(3, b1, now.Add(-time.Minute), 51.5, now)))
	if foreign.statuses() != "1:rejected 2:rejected 3:ok" || !strings.Contains(foreign.Results[0].Error, "does not belong") {
		t.Fatalf("foreign child: %+v", foreign.Results)
	}
	want["locations"]++ // b1's own
	checkStats("foreign batch")
	locs := c.readLocations(t, centralAdminToken, a1)
	if len(locs) != 1 || locs[0]["latitude"] != 40.7 {
		t.Fatalf("a1's locations after home B wrote: %v", locs)
	}

	// The roster lists the token's home's children only.
	var roster struct{ Children []string }
	r := c.Do(t, "GET", hearth.PathEdgeRoster, tokA, nil, nil)
	r.JSON(t, &roster)
	if r.Code != 200 || len(roster.Children) != 1 || roster.Children[0] != a1 {
		t.Fatalf("roster: %d %s", r.Code, r.Body)
	}

	// Refusals of whole batches, each with a JSON reason.
	big := batchBody(now, batchMsg{Seq: 1, ChildHash: a1, Type: "location", ReceivedAt: now,
		Data: json.RawMessage(`{"pad":"` + strings.Repeat("x", 100<<10) + `"}`)})
	var many []batchMsg
	for i := range 51 {
		many = append(many, locMsg(uint64(i), a1, now.Add(-time.Duration(i)*time.Second), 1, now))
	}
	for _, tc := range []struct {
		name   string
		token  string
		body   []byte
		zip    bool
		code   int
		reason string
	}{
		{"no token", "", batch, true, 401, "bearer token"},
		{"bad token", "not-a-token", batch, true, 401, "unknown home token"},
		{"admin token is not a home", centralAdminToken, batch, true, 401, "unknown home token"},
		{"not JSON", tokA, []byte("hello"), true, 400, "JSON object"},
		{"binary garbage", tokA, []byte("\x1f\x8b garbage"), false, 400, "JSON object"},
		{"no sent_at", tokA, []byte(`{"messages":[]}`), true, 400, "sent_at"},
		{"no seq", tokA, []byte(`{"sent_at":"2025-12-10T10:00:00Z","messages":[{"type":"location"}]}`), true, 400, "seq"},
		{"too large as sent", tokA, big, false, 413, "split"},
		{"too many messages", tokA, batchBody(now, many...), true, 413, "at most 50"},
	} {
		var r CentralReply
		if tc.code == 413 && !tc.zip {
			r = c.PostRaw(t, tc.token, tc.body)
		} else {
			r = c.PostBatch(t, tc.token, tc.body, tc.zip)
		}
		var e struct{ Error string }
		if err := json.Unmarshal(r.Body, &e); err != nil || r.Code != tc.code || !strings.Contains(e.Error, tc.reason) {
			t.Errorf("%s: %d %s; want %d and an error containing %q", tc.name, r.Code, r.Body, tc.code, tc.reason)
		}
	}
	if r := c.Do(t, "POST", hearth.PathEdgeBatches, tokA, batch, map[string]string{"Content-Encoding": "gzip"}); r.Code != 400 || !strings.Contains(string(r.Body), "gzip") {
		t.Errorf("gzip declared, JSON sent: %d %s", r.Code, r.Body)
	}
	if r := c.Do(t, "GET", hearth.PathEdgeBatches, tokA, nil, nil); r.Code != 405 {
		t.Errorf("GET batches: %d", r.Code)
	}
	checkStats("refused batches")

	_, metrics := get(t, c.Admin+"/metrics")
	for _, m := range []string{
		`hearth_central_batches_total{result="ok"} 3`,
		`hearth_central_batches_total{result="unauthorized"} 3`,
		`hearth_central_batches_total{result="too_large"} 2`,
		`hearth_central_batches_total{result="bad_request"} 5`,
		`hearth_central_messages_total{code="foreign_child",status="rejected"} 2`,
		`hearth_central_messages_total{code="unknown_child",status="rejected"} 2`,
		`hearth_central_messages_total{code="too_old",status="rejected"} 2`,
		`hearth_central_apply_seconds_count 3`,
		`hearth_central_edges_clock_off `,
		"hearth_ingest_connections 0",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	if strings.Contains(c.Log(), tokA) || strings.Contains(c.Log(), tokB) {
		t.Error("a token appears in the log")
	}

	c.Signal(syscall.SIGTERM)
	if err := c.Wait(10 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, c.Log())
	}
	if _, err := c.WaitLog("hearth-central stopped", time.Second); err != nil {
		t.Fatal(err)
	}
}

// Ensure that an edge's clock offset is measured, shown by `home list`,
// and corrects received_at: a backlog from an edge whose clock runs an hour
// fast does not overwrite fresher data a phone sent straight to central.
func TestCentral_ClockOffset(t *testing.T) {
	db := CentralSQLite(t)
	home, tok := CentralAddHome(t, db, "fast clock")
	kid := CentralAddChild(t, db, home, "")
	c := StartCentral(t, db, "--admin-token", centralAdminToken)

	now := time.Now().UTC().Truncate(time.Second)
	ts := now.Add(-20 * time.Minute)
	direct := fmt.Sprintf(`{"child_hash":%q,"location_info":{"timestamp":%q,"latitude":10,"longitude":2.5}}`, kid, ts.Format(time.RFC3339))
	if code, out, _ := ingesttest.Post(t, ingesttest.Target{URL: c.URL}, direct, nil); code != 200 || fmt.Sprint(out["location"]) != "map[status:ok timestamp:"+ts.Format("2006-01-02T15:04:05")+"+00:00]" {
		t.Fatalf("direct write: %d %v", code, out)
	}

	// The edge received its copy 10 minutes before the direct write, by
	// central's clock; its own clock says 50 minutes after.
	fast := now.Add(time.Hour)
	res := c.mustApply(t, tok, batchBody(fast, locMsg(1, kid, ts, 20, fast.Add(-10*time.Minute))))
	if res.statuses() != "1:ok" {
		t.Fatalf("results %+v", res.Results)
	}
	if locs := c.readLocations(t, centralAdminToken, kid); len(locs) != 1 || locs[0]["latitude"] != 10.0 {
		t.Fatalf("the late backlog overwrote the direct write: %v", locs)
	}
	// A message the edge received after the direct write does win (received
	// as it sends: central's now once corrected).
	c.mustApply(t, tok, batchBody(fast.Add(2*time.Second), locMsg(2, kid, ts, 30, fast.Add(2*time.Second))))
	if locs := c.readLocations(t, centralAdminToken, kid); len(locs) != 1 || locs[0]["latitude"] != 30.0 {
		t.Fatalf("newer data from the edge did not win: %v", locs)
	}

	var homes []struct {
		HomeID             string     `json:"home_id"`
		ClockOffsetSeconds float64    `json:"clock_offset_seconds"`
		LastSeen           *time.Time `json:"last_seen"`
	}
	CentralJSON(t, db, &homes, "home list", "--json")
	if len(homes) != 1 || homes[0].ClockOffsetSeconds < 3590 || homes[0].ClockOffsetSeconds > 3610 || homes[0].LastSeen == nil {
		t.Fatalf("home list --json: %+v", homes)
	}
	if out, _, _ := RunCentral(t, db, "home list"); !strings.Contains(out, fmt.Sprintf("%+.3fs", homes[0].ClockOffsetSeconds)) {
		t.Fatalf("home list does not show the offset %.3fs:\n%s", homes[0].ClockOffsetSeconds, out)
	}
	testutil.WaitFor(t, 10*time.Second, func() error { // the edge an hour ahead is named, not labelled
		var f struct {
			ClockOff []struct {
				ID                 string  `json:"id"`
				ClockOffsetSeconds float64 `json:"clock_offset_seconds"`
			} `json:"clock_off"`
		}
		_, body := get(t, c.Admin+"/fleet")
		if err := json.Unmarshal([]byte(body), &f); err != nil || len(f.ClockOff) != 1 || f.ClockOff[0].ID != home ||
			f.ClockOff[0].ClockOffsetSeconds < 3590 || f.ClockOff[0].ClockOffsetSeconds > 3610 {
			return fmt.Errorf("/fleet: %s", body)
		}
		if _, metrics := get(t, c.Admin+"/metrics"); !strings.Contains(metrics, "hearth_central_edges_clock_off 1") {
			return fmt.Errorf("metrics: %s", testutil.GrepLines(metrics, "clock"))
		}
		return nil
	})
}

// Ensure that the read API lets the admin token read any child, a reader
// token only its own home's children, and a home token nothing.
func TestCentral_ReadAPI(t *testing.T) {
	db := CentralSQLite(t)
	homeA, tokA := CentralAddHome(t, db, "A")
	homeB, _ := CentralAddHome(t, db, "B")
	a1 := CentralAddChild(t, db, homeA, "")
	CentralAddChild(t, db, homeB, "")
	readerA, readerB := CentralAddReader(t, db, homeA), CentralAddReader(t, db, homeB)
	c := StartCentral(t, db, "--admin-token", centralAdminToken)
	now := time.Now().UTC().Truncate(time.Second)
	c.mustApply(t, tokA, batchBody(now, screenMsg(1, a1, now, 4000, now), siteMsg(2, a1, now.Add(-time.Hour), now),
		locMsg(3, a1, now.Add(-time.Minute), 1.5, now)))

	day := now.Format("2006-01-02")
	stPath := "/v1/children/" + a1 + "/screen_time?from=" + day + "&to=" + day
	r := c.Do(t, "GET", stPath, readerA, nil, nil)
	var st struct {
		ChildHash string `json:"child_hash"`
		Days      []struct {
			Date  string                      `json:"date"`
			Total int                         `json:"total_screen_time"`
			Apps  map[string]map[string]int64 `json:"app_wise_data"`
		} `json:"days"`
	}
	r.JSON(t, &st)
	if r.Code != 200 || st.ChildHash != a1 || len(st.Days) != 1 || st.Days[0].Total != 4000 || st.Days[0].Apps["com.example.app"]["9"] != 600 {
		t.Fatalf("screen_time: %d %s", r.Code, r.Body)
	}
	q := url.Values{"from": {now.Add(-2 * time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}}.Encode()
	r = c.Do(t, "GET", "/v1/children/"+a1+"/site_access?"+q, centralAdminToken, nil, nil)
	var sa struct {
		Logs []struct {
			URL      string `json:"url"`
			Accessed bool   `json:"accessed"`
		} `json:"logs"`
	}
	r.JSON(t, &sa)
	if r.Code != 200 || len(sa.Logs) != 2 || sa.Logs[0].URL != "https://example.com" || !sa.Logs[0].Accessed {
		t.Fatalf("site_access: %d %s", r.Code, r.Body)
	}
	if locs := c.readLocations(t, centralAdminToken, a1); len(locs) != 1 {
		t.Fatalf("locations: %v", locs)
	}
	for _, tc := range []struct {
		name, path, token string
		code              int
	}{
		{"other home's child", stPath, readerB, 403},
		{"home token", stPath, tokA, 403},
		{"unknown child, reader token", "/v1/children/nobody/screen_time?from=" + day + "&to=" + day, readerA, 403},
		{"unknown child, admin", "/v1/children/nobody/screen_time?from=" + day + "&to=" + day, centralAdminToken, 404},
		{"no token", stPath, "", 401},
		{"bad token", stPath, "guess", 401},
		{"bad date", "/v1/children/" + a1 + "/screen_time?from=yesterday&to=" + day, readerA, 400},
		{"no range", "/v1/children/" + a1 + "/locations", readerA, 400},
		{"reversed range", "/v1/children/" + a1 + "/screen_time?from=" + day + "&to=2001-01-01", centralAdminToken, 400},
		{"unknown kind", "/v1/children/" + a1 + "/weather", readerA, 404},
	} {
		r := c.Do(t, "GET", tc.path, tc.token, nil, nil)
		var e struct{ Error string }
		if err := json.Unmarshal(r.Body, &e); err != nil || r.Code != tc.code || e.Error == "" {
			t.Errorf("%s: %d %s, want %d with a JSON error", tc.name, r.Code, r.Body, tc.code)
		}
	}
}

// Ensure that central answers 503 + Retry-After while PostgreSQL is
// unreachable, reports not ready, and recovers by itself. The database
// is cut off by a TCP proxy between central and PostgreSQL.
func TestCentral_StoreDown_Postgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.addr
	viaProxy := u.String()
	home, tok := CentralAddHome(t, dsn, "pg home")
	kid := CentralAddChild(t, dsn, home, "")
	c := StartCentral(t, viaProxy, "--store-timeout", "3s", "--retry-after", "7s")

	now := time.Now().UTC()
	if res := c.mustApply(t, tok, batchBody(now, locMsg(1, kid, now.Add(-time.Minute), 1, now))); res.statuses() != "1:ok" {
		t.Fatalf("results %+v", res.Results)
	}
	if code, body := get(t, c.Admin+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}

	proxy.down()
	body := batchBody(now, locMsg(2, kid, now.Add(-2*time.Minute), 2, now))
	r := c.PostBatch(t, tok, body, true)
	if r.Code != 503 || r.Header.Get("Retry-After") != "7" || !strings.Contains(string(r.Body), "retry later") {
		t.Fatalf("batch with the database down: %d %q %s", r.Code, r.Header.Get("Retry-After"), r.Body)
	}
	testutil.WaitFor(t, 15*time.Second, func() error { // the write probe runs every db_probe_interval
		if code, body := get(t, c.Admin+"/readyz"); code != 503 || !strings.Contains(body, "the database cannot be written") {
			return fmt.Errorf("readyz with the database down: %d %s", code, body)
		}
		return nil
	})
	phone := fmt.Sprintf(`{"child_hash":%q,"location_info":{"timestamp":%q,"latitude":3,"longitude":3}}`, kid, now.Format(time.RFC3339))
	if code, out, hdr := ingesttest.Post(t, ingesttest.Target{URL: c.URL}, phone, nil); code != 503 || hdr.Get("Retry-After") == "" {
		t.Fatalf("phone with the database down: %d %v", code, out)
	}

	proxy.up()
	testutil.WaitFor(t, 15*time.Second, func() error {
		if r := c.PostBatch(t, tok, body, true); r.Code != 200 {
			return fmt.Errorf("batch: %d %s", r.Code, r.Body)
		}
		return nil
	})
	if st := CentralStats(t, dsn); st["locations"] != 2 {
		t.Fatalf("stats after recovery: %v", st)
	}
	_, metrics := get(t, c.Admin+"/metrics")
	if !strings.Contains(metrics, `hearth_central_batches_total{result="unavailable"}`) {
		t.Fatal("metrics lack the unavailable batches")
	}
}

// tcpProxy forwards connections to a target; down cuts every connection
// and refuses new ones until up.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			if !p.track(in, out) {
				continue
			}
			go func() { io.Copy(out, in); out.Close(); in.Close() }()
			go func() { io.Copy(in, out); out.Close(); in.Close() }()
		}
	}()
}

// track registers a connection pair unless the proxy went down meanwhile.
func (p *tcpProxy) track(in, out net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		in.Close()
		out.Close()
		return false
	}
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	return true
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *tcpProxy) up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was ours a moment ago; wait if it lingers
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy up: %v", err)
	}
	p.serve(ln)
}
