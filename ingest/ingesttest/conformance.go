// Package ingesttest is the device-protocol conformance suite: it drives a
// running server (hearthd or hearth-central) through every exchange of the
// seed protocol, over real sockets.
package ingesttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// Target is a server under test.
type Target struct {
	URL     string // base URL, e.g. http://127.0.0.1:8000
	Known   string // a child hash the server accepts
	Unknown string // a child hash it refuses; "" when it accepts any child
	Header  http.Header
}

// Run runs every conformance test against target.
func Run(t *testing.T, target Target) {
	t.Run("Direct", func(t *testing.T) { testDirect(t, target) })
	t.Run("DirectUnknownChild", func(t *testing.T) { testDirectUnknown(t, target) })
	t.Run("BadFrames", func(t *testing.T) { testBadFrames(t, target) })
	t.Run("Pipelining", func(t *testing.T) { testPipelining(t, target) })
	t.Run("AuthFlow", func(t *testing.T) { testAuthFlow(t, target) })
	t.Run("AuthFlowRefusals", func(t *testing.T) { testAuthRefusals(t, target) })
	t.Run("HTTP", func(t *testing.T) { testHTTP(t, target) })
	t.Run("HTTPRefusals", func(t *testing.T) { testHTTPRefusals(t, target) })
	t.Run("SeedResults", func(t *testing.T) { testSeedResults(t, target) })
	t.Run("SeedNormalisation", func(t *testing.T) { testSeedNormalisation(t, target) })
	t.Run("Protocol2", func(t *testing.T) { testProtocol2(t, target) })
	t.Run("InvalidUTF8", func(t *testing.T) { testInvalidUTF8(t, target) })
	t.Run("HTTPSeedShapes", func(t *testing.T) { testHTTPSeedShapes(t, target) })
}

// Sample payloads, valid at the time of the test.
func ScreenTimeData() string {
	return fmt.Sprintf(`{"date":%q,"total_screen_time":3600,"app_wise_data":{"com.example.app":{"0":1800,"13":600}}}`, time.Now().UTC().Format("2006-01-02"))
}

func LocationData(n int) string {
	ts := time.Now().UTC().Add(-time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano)
	return fmt.Sprintf(`{"timestamp":%q,"latitude":40.7128,"longitude":-74.0060}`, ts)
}

func SiteAccessData() string {
	return fmt.Sprintf(`{"logs":[{"timestamp":%q,"url":"https://example.com","accessed":true}]}`, time.Now().UTC().Format(time.RFC3339))
}

// Frame builds a data frame.
func Frame(kind, data string) string {
	return fmt.Sprintf(`{"type":%q,"data":%s}`, kind, data)
}

// Reply is any server frame.
type Reply struct {
	Type        string          `json:"type"`
	Message     string          `json:"message"`
	MessageType string          `json:"message_type"`
	Status      string          `json:"status"`
	ChildHash   string          `json:"child_hash"`
	Result      map[string]any  `json:"result"`
	Code        string          `json:"code"`
	RetryAfter  int             `json:"retry_after"`
	ID          json.RawMessage `json:"id"`
}

// Conn is a phone's WebSocket in a test.
type Conn struct {
	t *testing.T
	*websocket.Conn
}

// Dial opens a WebSocket to path on target.
func Dial(t *testing.T, target Target, path string) (*Conn, *http.Response, error) {
	t.Helper()
	return DialWith(t, target, path, target.Header)
}

// DialWith is Dial with the upgrade request's headers.
func DialWith(t *testing.T, target Target, path string, header http.Header) (*Conn, *http.Response, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(target.URL, "http") + path
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{t: t, Conn: c}, resp, nil
}

// MustDial is Dial that fails the test on error.
func MustDial(t *testing.T, target Target, path string) *Conn {
	t.Helper()
	c, _, err := Dial(t, target, path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

// Send writes a text frame.
func (c *Conn) Send(frame string) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send %.60s: %v", frame, err)
	}
}

// Read reads the next server frame.
func (c *Conn) Read() Reply {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	mt, b, err := c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	if mt != websocket.TextMessage {
		c.t.Fatalf("reply is not a text frame: type %d", mt)
	}
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil {
		c.t.Fatalf("reply %q is not JSON: %v", b, err)
	}
	return r
}

// Expect reads a reply and checks its type.
func (c *Conn) Expect(typ string) Reply {
	c.t.Helper()
	r := c.Read()
	if r.Type != typ {
		c.t.Fatalf("reply type %q (message %q), want %q", r.Type, r.Message, typ)
	}
	return r
}

// ExpectError reads an error reply whose message contains want; every
// error carries a machine-readable code.
func (c *Conn) ExpectError(want string) Reply {
	c.t.Helper()
	r := c.Expect("error")
	if !strings.Contains(r.Message, want) {
		c.t.Fatalf("error message %q does not contain %q", r.Message, want)
	}
	if r.Code == "" {
		c.t.Fatalf("error %q has no code", r.Message)
	}
	return r
}

// ExpectErrorCode reads an error reply with code.
func (c *Conn) ExpectErrorCode(code string) Reply {
	c.t.Helper()
	r := c.Expect("error")
	if r.Code != code {
		c.t.Fatalf("error %q has code %q, want %q", r.Message, r.Code, code)
	}
	return r
}

// ExpectAck reads an ack for kind.
func (c *Conn) ExpectAck(kind string) Reply {
	c.t.Helper()
	r := c.Expect("ack")
	if r.MessageType != kind || r.Status != "success" || r.Result["stored"] != true {
		c.t.Fatalf("ack %+v, want message_type %q, status success, result.stored true", r, kind)
	}
	return r
}

// ExpectClose reads until the connection closes and checks the close code.
func (c *Conn) ExpectClose(code int) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, code) {
			c.t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		return
	}
}

// Post sends an HTTP fallback request and decodes the reply.
func Post(t *testing.T, target Target, body string, header map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target.URL+"/api/ingest/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("reply %q: %v", b, err)
		}
	} else {
		out = map[string]any{"text": string(b)}
	}
	return resp.StatusCode, out, resp.Header
}
