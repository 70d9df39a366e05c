// Package loadgentest is a stand-in hearth server for tests of the load
// generator: just enough of the device protocol, with faults on request.
package loadgentest

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// Options choose the faults the server injects. Data frames and HTTP
// bodies are counted together, across all connections, from 1.
type Options struct {
	// ErrorEvery answers every Nth data message with an error (a WS error
	// frame; HTTP 422, or 200 with the error in the section without
	// Hearth-Protocol: 2). 0 never does.
	ErrorEvery int
	// CloseEvery drops the connection instead of answering every Nth data
	// message. 0 never does.
	CloseEvery int
	// Children is the roster; empty accepts any child.
	Children []string
}

// Record is one data message the server answered.
type Record struct {
	Child string
	Kind  string
	Data  []byte
}

// Server is a running stand-in server.
type Server struct {
	URL string // http://127.0.0.1:port

	opt      Options
	srv      *fasthttp.Server
	upgrader websocket.FastHTTPUpgrader

	mu      sync.Mutex
	n       int
	acked   []Record
	errored []Record
	dropped []Record
	conns   map[*websocket.Conn]struct{}
	opened  int
	closed  bool
}

// Start serves on 127.0.0.1:0 until the test ends.
func Start(tb testing.TB, opt Options) *Server {
	tb.Helper()
	return StartOn(tb, "127.0.0.1:0", opt)
}

// StartOn serves on addr until the test ends; give it the address of a
// closed Server to play a restart.
func StartOn(tb testing.TB, addr string, opt Options) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), opt: opt, conns: make(map[*websocket.Conn]struct{})}
	// KeepHijackedConns makes websocket.Conn.Close close the connection;
	// without it Close is a no-op until the upgrade handler returns.
	s.srv = &fasthttp.Server{Handler: s.handle, ReadTimeout: 10 * time.Second, KeepHijackedConns: true}
	go s.srv.Serve(ln)
	tb.Cleanup(s.Close)
	return s
}

// Close closes every WebSocket and stops the server. (fasthttp's Shutdown
// waits for the hijacked WebSocket conns, so they go first.)
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.srv.Shutdown()
}

// Acked returns the messages acked so far.
func (s *Server) Acked() []Record { return s.snapshot(&s.acked) }

// Errored returns the messages answered with an error so far.
func (s *Server) Errored() []Record { return s.snapshot(&s.errored) }

// Dropped returns the messages whose connection was closed instead of answered.
func (s *Server) Dropped() []Record { return s.snapshot(&s.dropped) }

func (s *Server) snapshot(rs *[]Record) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Record(nil), *rs...)
}

// Open returns the number of WebSockets open now.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Opened returns the number of WebSockets accepted so far.
func (s *Server) Opened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

func (s *Server) known(child string) bool {
	if len(s.opt.Children) == 0 {
		return true
	}
	for _, c := range s.opt.Children {
		if c == child {
			return true
		}
	}
	return false
}

type fault int

const (
	answer fault = iota
	refuse
	drop
)

// judge counts one data message and decides its fate.
func (s *Server) judge(r Record) fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	switch {
	case s.opt.CloseEvery > 0 && s.n%s.opt.CloseEvery == 0:
		s.dropped = append(s.dropped, r)
		return drop
	case s.opt.ErrorEvery > 0 && s.n%s.opt.ErrorEvery == 0:
		s.errored = append(s.errored, r)
		return refuse
	}
	s.acked = append(s.acked, r)
	return answer
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	switch {
	case path == "/api/ingest/":
		s.handleHTTP(ctx)
	case path == "/ws/ingest-auth/":
		s.upgrade(ctx, "")
	case strings.HasPrefix(path, "/ws/ingest/") && strings.HasSuffix(path, "/"):
		child := strings.TrimSuffix(strings.TrimPrefix(path, "/ws/ingest/"), "/")
		if !s.known(child) {
			ctx.Error("unknown child", fasthttp.StatusForbidden)
			return
		}
		s.upgrade(ctx, child)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// upgrade serves one WebSocket; child is empty for the auth flow.
func (s *Server) upgrade(ctx *fasthttp.RequestCtx, child string) {
	s.upgrader.Upgrade(ctx, func(c *websocket.Conn) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.opened++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
		if child == "" {
			if child = s.auth(c); child == "" {
				return
			}
		} else {
			writeJSON(c, map[string]any{"type": "connection_established", "child_hash": child, "message": "connected"})
		}
		s.serveWS(c, child)
	})
}

func (s *Server) auth(c *websocket.Conn) string {
	writeJSON(c, map[string]any{"type": "auth_required", "message": "send auth"})
	_, p, err := c.ReadMessage()
	if err != nil {
		return ""
	}
	var f struct {
		Type      string `json:"type"`
		ChildHash string `json:"child_hash"`
	}
	json.Unmarshal(p, &f)
	if f.Type != "auth" || !s.known(f.ChildHash) {
		writeJSON(c, map[string]any{"type": "error", "message": "unknown child"})
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4004, "unknown child"), time.Now().Add(time.Second))
		return ""
	}
	writeJSON(c, map[string]any{"type": "auth_success", "child_hash": f.ChildHash, "message": "authenticated"})
	return f.ChildHash
}

func (s *Server) serveWS(c *websocket.Conn, child string) {
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		var f struct {
			Type string          `json:"type"`
			ID   json.RawMessage `json:"id"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(p, &f) != nil || f.Data == nil {
			writeJSON(c, map[string]any{"type": "error", "message": "bad frame"})
			continue
		}
		switch s.judge(Record{child, f.Type, bytes.Clone(f.Data)}) {
		case drop:
			return
		case refuse:
			writeJSON(c, map[string]any{"type": "error", "message": "refused by fixture"})
		default:
			ack := map[string]any{"type": "ack", "message_type": f.Type, "status": "success", "result": map[string]any{"stored": true}}
			if f.ID != nil {
				ack["id"] = f.ID
			}
			writeJSON(c, ack)
		}
	}
}

var sections = map[string]string{"screen_time_info": "screen_time", "location_info": "location", "site_access_info": "site_access"}

func (s *Server) handleHTTP(ctx *fasthttp.RequestCtx) {
	var body map[string]json.RawMessage
	if json.Unmarshal(ctx.PostBody(), &body) != nil || body["child_hash"] == nil {
		ctx.Error(`{"error":"bad body"}`, fasthttp.StatusBadRequest)
		return
	}
	var child string
	json.Unmarshal(body["child_hash"], &child)
	reply := map[string]any{"child_hash": child, "screen_time": "not provided", "location": "not provided", "site_access": "not provided"}
	code := fasthttp.StatusOK
	for field, kind := range sections {
		data, ok := body[field]
		if !ok {
			continue
		}
		switch s.judge(Record{child, kind, bytes.Clone(data)}) {
		case drop:
			ctx.Conn().Close()
			return
		case refuse:
			reply[kind] = map[string]string{"error": "refused by fixture"}
			if string(ctx.Request.Header.Peek("Hearth-Protocol")) == "2" {
				code = fasthttp.StatusUnprocessableEntity
			}
		default:
			reply[kind] = map[string]string{"status": "ok"}
		}
	}
	out, _ := json.Marshal(reply)
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBody(out)
}

func writeJSON(c *websocket.Conn, v any) {
	p, _ := json.Marshal(v)
	c.WriteMessage(websocket.TextMessage, p)
}
