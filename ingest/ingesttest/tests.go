package ingesttest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// Ensure that a direct connection is established and every kind is acked.
func testDirect(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest/"+tg.Known+"/")
	r := c.Expect("connection_established")
	if r.ChildHash != tg.Known {
		t.Fatalf("connection_established child_hash %q, want %q", r.ChildHash, tg.Known)
	}
	c.Send(Frame("screen_time", ScreenTimeData()))
	c.ExpectAck("screen_time")
	c.Send(Frame("location", LocationData(1)))
	c.ExpectAck("location")
	c.Send(Frame("site_access", SiteAccessData()))
	c.ExpectAck("site_access")
	c.Send(`{"type":"location","id":17,"data":` + LocationData(2) + `}`)
	if r := c.ExpectAck("location"); string(r.ID) != "17" {
		t.Fatalf("ack id %s, want 17", r.ID)
	}
	c.Send(`{"type":"ping","id":"p1"}`)
	if r := c.Expect("pong"); string(r.ID) != `"p1"` {
		t.Fatalf("pong id %s, want \"p1\"", r.ID)
	}
	// A client control ping gets a control pong.
	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("x"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.Send(`{"type":"ping"}`)
	c.Expect("pong")
	select {
	case <-pong:
	default:
		t.Fatal("no pong for a control ping")
	}
}

// Ensure that an unknown child is refused at the handshake with 403.
func testDirectUnknown(t *testing.T, tg Target) {
	if tg.Unknown == "" {
		t.Skip("target accepts any child")
	}
	_, resp, err := Dial(t, tg, "/ws/ingest/"+tg.Unknown+"/")
	if err == nil {
		t.Fatal("unknown child was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("handshake answer %v, want 403", resp)
	}
}

// Ensure that every kind of bad frame gets a clear error and the
// connection keeps working.
func testBadFrames(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest/"+tg.Known+"/")
	c.Expect("connection_established")
	cases := []struct{ frame, want string }{
		{`[1,2,3]`, "must be a JSON object"},
		{`{"type":`, "not valid JSON"},
		{`"hello"`, "must be a JSON object"},
		{`{}`, `no "type"`},
		{`{"type":42}`, `"type" must be a string`},
		{`{"type":"weather","data":{}}`, "unknown message type"},
		{`{"type":"location"}`, `"data" is required`},
		{`{"type":"location","data":[1]}`, "must be a JSON object"},
		{Frame("location", `{"timestamp":"2025-12-10T10:30:00Z","latitude":91,"longitude":0}`), "latitude"},
		{Frame("location", `{"timestamp":"yesterday","latitude":1,"longitude":0}`), "RFC 3339"},
		{Frame("screen_time", `{"date":"10/12/2025","total_screen_time":1}`), "YYYY-MM-DD"},
		{Frame("screen_time", `{"date":"2025-12-10","total_screen_time":90000}`), "0-86400"},
		{Frame("site_access", `{"logs":"x"}`), "must be a list"},
		{Frame("screen_time", `{"date":"2025-12-10","total_screen_time":1}`), "app_wise_data"},
		{Frame("location", `{"timestamp":"2100-01-01T00:00:00Z","latitude":1,"longitude":0}`), "not before 2100"},
		{Frame("screen_time", `{"date":"2025-12-10","total_screen_time":1,"app_wise_data":{"a\u0000b":{"1":1}}}`), "control character"},
		{Frame("location", `{"timestamp":"2001-01-01T00:00:00Z","latitude":1,"longitude":2}`), "retention"},
		{`{"type":"location","child_hash":"someone-else","data":` + LocationData(3) + `}`, "does not match"},
	}
	for _, tc := range cases {
		c.Send(tc.frame)
		c.ExpectError(tc.want)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	c.ExpectError("binary")
	c.Send(`{"type":"location","id":"big","data":{"pad":"` + strings.Repeat("x", 70<<10) + `"}}`)
	c.ExpectError("too large")
	c.Send(Frame("location", LocationData(4)))
	c.ExpectAck("location")
}

// Ensure that pipelined frames are answered once each, in order.
func testPipelining(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest/"+tg.Known+"/")
	c.Expect("connection_established")
	const n = 20
	for i := 0; i < n; i++ {
		if i%5 == 4 {
			c.Send(fmt.Sprintf(`{"type":"location","id":%d,"data":{}}`, i))
			continue
		}
		c.Send(fmt.Sprintf(`{"type":"location","id":%d,"data":%s}`, i, LocationData(100+i)))
	}
	for i := 0; i < n; i++ {
		r := c.Read()
		if string(r.ID) != fmt.Sprint(i) {
			t.Fatalf("reply %d has id %s: out of order", i, r.ID)
		}
		if want := map[bool]string{true: "error", false: "ack"}[i%5 == 4]; r.Type != want {
			t.Fatalf("reply %d is %q (%s), want %q", i, r.Type, r.Message, want)
		}
	}
}

// Ensure that the auth flow asks for auth, refuses data before it, and
// acks data after it.
func testAuthFlow(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest-auth/")
	c.Expect("auth_required")
	c.Send(Frame("location", LocationData(5)))
	c.ExpectError("not authenticated")
	c.Send(`{"type":"auth","child_hash":"` + tg.Known + `"}`)
	if r := c.Expect("auth_success"); r.ChildHash != tg.Known {
		t.Fatalf("auth_success child_hash %q", r.ChildHash)
	}
	c.Send(Frame("location", LocationData(6)))
	c.ExpectAck("location")
	c.Send(`{"type":"auth","child_hash":"` + tg.Known + `"}`)
	c.ExpectError("already authenticated")
}

// Ensure that the auth flow closes with 4001 without a hash and 4004 for an
// unknown child, after an error frame.
func testAuthRefusals(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest-auth/")
	c.Expect("auth_required")
	c.Send(`{"type":"auth"}`)
	c.ExpectError("child_hash is required")
	c.ExpectClose(4001)
	if tg.Unknown == "" {
		return
	}
	c = MustDial(t, tg, "/ws/ingest-auth/")
	c.Expect("auth_required")
	c.Send(`{"type":"auth","child_hash":"` + tg.Unknown + `"}`)
	c.ExpectError("unknown child")
	c.ExpectClose(4004)
}

// Ensure that the HTTP fallback stores any subset of sections and answers
// in the seed's shape.
func testHTTP(t *testing.T, tg Target) {
	body := fmt.Sprintf(`{"child_hash":%q,"screen_time_info":%s,"location_info":%s,"site_access_info":%s}`,
		tg.Known, ScreenTimeData(), LocationData(7), SiteAccessData())
	code, out, _ := Post(t, tg, body, nil)
	if code != 200 || out["child_hash"] != tg.Known {
		t.Fatalf("status %d body %v", code, out)
	}
	for _, k := range []string{"screen_time", "location", "site_access"} {
		if sec, _ := out[k].(map[string]any); sec["status"] != "ok" {
			t.Fatalf("%s: %v, want {status: ok}", k, out[k])
		}
	}
	code, out, _ = Post(t, tg, fmt.Sprintf(`{"child_hash":%q,"location_info":%s}`, tg.Known, LocationData(8)), nil)
	if code != 200 || out["screen_time"] != "not provided" || out["site_access"] != "not provided" {
		t.Fatalf("subset: status %d body %v", code, out)
	}
}

// Ensure that HTTP refusals keep the seed's 200 (or honest codes with
// Hearth-Protocol: 2) and bodies that cannot be read get 400.
func testHTTPRefusals(t *testing.T, tg Target) {
	v2 := map[string]string{"Hearth-Protocol": "2"}
	invalid := fmt.Sprintf(`{"child_hash":%q,"location_info":{"latitude":1}}`, tg.Known)
	expectSection(t, tg, invalid, nil, 200, "location", "timestamp")
	expectSection(t, tg, invalid, v2, 422, "location", "timestamp")
	mismatch := fmt.Sprintf(`{"child_hash":%q,"location_info":{"child_hash":"other","timestamp":"2025-12-10T10:30:00Z","latitude":1,"longitude":1}}`, tg.Known)
	expectSection(t, tg, mismatch, nil, 200, "location", "does not match")
	expectSection(t, tg, mismatch, v2, 403, "location", "does not match")
	if tg.Unknown != "" {
		unknown := fmt.Sprintf(`{"child_hash":%q,"location_info":%s}`, tg.Unknown, LocationData(9))
		expectSection(t, tg, unknown, nil, 200, "location", "unknown child")
		expectSection(t, tg, unknown, v2, 403, "location", "unknown child")
	}
	for _, body := range []string{`not json`, `[1]`, `{"location_info":{}}`, `{"child_hash":""}`, `{"child_hash":5}`} {
		if code, out, _ := Post(t, tg, body, nil); code != 400 {
			t.Fatalf("body %q: status %d (%v), want 400", body, code, out)
		}
	}
	big := fmt.Sprintf(`{"child_hash":%q,"location_info":{"pad":"%s"}}`, tg.Known, strings.Repeat("x", 70<<10))
	if code, out, _ := Post(t, tg, big, nil); code != 413 {
		t.Fatalf("70 KiB body: status %d (%v), want 413", code, out)
	}
	req, _ := http.NewRequest(http.MethodGet, tg.URL+"/api/ingest/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET: status %d, want 405", resp.StatusCode)
	}
}

func expectSection(t *testing.T, tg Target, body string, hdr map[string]string, wantCode int, section, want string) {
	t.Helper()
	code, out, _ := Post(t, tg, body, hdr)
	sec, _ := out[section].(map[string]any)
	msg, _ := sec["error"].(string)
	if code != wantCode || !strings.Contains(msg, want) {
		t.Fatalf("body %.80s: status %d, %s=%v; want %d and an error containing %q", body, code, section, out[section], wantCode, want)
	}
}

// Ensure that acks carry the seed's result keys: screen_time its date,
// location its timestamp in Python's isoformat, site_access its count.
func testSeedResults(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest/"+tg.Known+"/")
	c.Expect("connection_established")
	c.Send(Frame("screen_time", ScreenTimeData()))
	if r := c.ExpectAck("screen_time"); r.Result["date"] != time.Now().UTC().Format("2006-01-02") {
		t.Fatalf("screen_time result %v, want the date", r.Result)
	}
	ts := time.Now().UTC().Truncate(time.Second)
	c.Send(Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":1,"longitude":2}`, ts.Format(time.RFC3339))))
	if r := c.ExpectAck("location"); r.Result["timestamp"] != ts.Format("2006-01-02T15:04:05+00:00") {
		t.Fatalf("location result %v, want timestamp %s", r.Result, ts.Format("2006-01-02T15:04:05+00:00"))
	}
	c.Send(Frame("site_access", SiteAccessData()))
	if r := c.ExpectAck("site_access"); r.Result["count"] != 1.0 {
		t.Fatalf("site_access result %v, want count 1", r.Result)
	}
}

// Ensure that what the seed accepted in a loose form is acked with every
// skipped or normalised item named.
func testSeedNormalisation(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest/"+tg.Known+"/")
	c.Expect("connection_established")
	now := time.Now().UTC()
	c.Send(Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":"40.5","longitude":2,"speed":3}`, now.Format("2006-01-02T15:04:05"))))
	r := c.ExpectAck("location")
	wantNotes(t, r.Result, "normalised", "timestamp", "latitude")
	wantNotes(t, r.Result, "ignored", "speed")
	c.Send(Frame("site_access", fmt.Sprintf(`{"logs":[{"timestamp":%q,"url":"https://a.example","accessed":1},{"url":"https://b.example"}]}`, now.Format(time.RFC3339))))
	r = c.ExpectAck("site_access")
	if r.Result["count"] != 1.0 {
		t.Fatalf("count %v, want 1 (the incomplete visit skipped)", r.Result["count"])
	}
	wantNotes(t, r.Result, "normalised", "logs[0].accessed")
	wantNotes(t, r.Result, "ignored", "logs[1].timestamp")
	c.Send(Frame("site_access", `{}`))
	if r := c.ExpectAck("site_access"); r.Result["count"] != 0.0 {
		t.Fatalf("site_access without logs: %v, want count 0", r.Result)
	}
}

// wantNotes checks that result[key] lists a note for each field.
func wantNotes(t *testing.T, result map[string]any, key string, fields ...string) {
	t.Helper()
	notes, _ := result[key].([]any)
	for _, f := range fields {
		found := false
		for _, n := range notes {
			s, _ := n.(string)
			found = found || strings.HasPrefix(s, f+": ")
		}
		if !found {
			t.Fatalf("result %v: no %s note for %s", result, key, f)
		}
	}
}

// Ensure that a phone sending Hearth-Protocol: 2 at the upgrade gets
// every loose form refused with a code, and the canonical form acked.
func testProtocol2(t *testing.T, tg Target) {
	hdr := http.Header{}
	for k, v := range tg.Header {
		hdr[k] = v
	}
	hdr.Set("Hearth-Protocol", "2")
	c, _, err := DialWith(t, tg, "/ws/ingest/"+tg.Known+"/", hdr)
	if err != nil {
		t.Fatal(err)
	}
	c.Expect("connection_established")
	now := time.Now().UTC()
	c.Send(Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":1,"longitude":2}`, now.Format("2006-01-02T15:04:05"))))
	c.ExpectErrorCode("invalid")
	c.Send(Frame("site_access", `{"logs":[]}`))
	c.ExpectErrorCode("invalid")
	c.Send(Frame("location", `{"timestamp":"2001-01-01T00:00:00Z","latitude":1,"longitude":2}`))
	c.ExpectErrorCode("too_old")
	c.Send(Frame("location", LocationData(11)))
	c.ExpectAck("location")
}

// Ensure that a text frame that is not UTF-8 is answered with an error and
// the connection closed with 1007, after the replies to earlier frames.
func testInvalidUTF8(t *testing.T, tg Target) {
	c := MustDial(t, tg, "/ws/ingest/"+tg.Known+"/")
	c.Expect("connection_established")
	c.Send(Frame("location", LocationData(12)))
	c.Send("{\"type\":\"location\",\"data\":{\"x\":\"\xff\xfe\"}}")
	c.ExpectAck("location")
	c.ExpectErrorCode("malformed")
	c.ExpectClose(websocket.CloseInvalidFramePayloadData)
}

// Ensure that the HTTP fallback reads what the seed read: {} as "not
// provided", site_access_info as a bare list, and answers with the seed's
// count; with Hearth-Protocol: 2 both loose forms are 422.
func testHTTPSeedShapes(t *testing.T, tg Target) {
	logs := fmt.Sprintf(`[{"timestamp":%q,"url":"https://example.com","accessed":true}]`, time.Now().UTC().Format(time.RFC3339))
	body := fmt.Sprintf(`{"child_hash":%q,"screen_time_info":{},"site_access_info":%s}`, tg.Known, logs)
	code, out, _ := Post(t, tg, body, nil)
	sa, _ := out["site_access"].(map[string]any)
	if code != 200 || out["screen_time"] != "not provided" || sa["status"] != "ok" || sa["count"] != 1.0 {
		t.Fatalf("status %d body %v", code, out)
	}
	wantNotes(t, sa, "normalised", "site_access_info")
	code, out, _ = Post(t, tg, body, map[string]string{"Hearth-Protocol": "2"})
	st, _ := out["screen_time"].(map[string]any)
	if code != 422 || st["code"] != "invalid" {
		t.Fatalf("protocol 2: status %d body %v, want 422 with code invalid", code, out)
	}
}
