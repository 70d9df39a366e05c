package ingest_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth/ingest"
)

// Ensure that a phone that sends but never reads its replies is closed once
// a reply has waited WriteTimeout to be written (replies carry no socket
// deadline of their own: the ping loop fails a stuck write).
func TestServer_PhoneThatDoesNotReadIsClosed(t *testing.T) {
	srv, url := serve(t, openOutbox(t), ingest.StaticRoster{}, ingest.Config{Window: window, WriteTimeout: 200 * time.Millisecond})
	c, _, err := websocket.DefaultDialer.Dial("ws"+url[4:]+"/ws/ingest/kid-1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil { // connection_established: the session is attached
		t.Fatal(err)
	}
	if tc, ok := c.NetConn().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // the replies back up sooner
	}
	// Pings with a long id: each pong echoes it, so the server's socket
	// buffer fills after a few hundred replies that are never read.
	ping := []byte(`{"type":"ping","id":"` + strings.Repeat("x", 16<<10) + `"}`)
	sent := make(chan error, 1)
	go func() {
		for {
			if err := c.WriteMessage(websocket.TextMessage, ping); err != nil {
				sent <- err
				return
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for srv.Connections() > 0 {
		select {
		case <-deadline:
			t.Fatalf("a phone that does not read is still connected (%d connections)", srv.Connections())
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.Close() // unblocks the sender if its write was stuck too
	<-sent
}
