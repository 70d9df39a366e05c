// Package wsbench is what the reference servers of `make bench`
// (bench/bare, bench/naive) share: the phones' WebSocket endpoint on
// fasthttp + fasthttp/websocket, the greeting, and an ack built from a
// data frame's "type" and "id" found by scanning the bytes, without JSON
// decoding. They speak just enough of the device protocol for hearth-load.
package wsbench

import (
	"bytes"
	"log"
	"net"
	"strings"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// Serve answers /readyz-style probes on admin with "ok" and upgrades
// /ws/ingest/<child>/ on listen, running session for each WebSocket. It
// returns only on a listener's failure, which it logs fatally.
func Serve(listen, admin string, session func(c *websocket.Conn, child string)) {
	go func() {
		log.Fatal(fasthttp.ListenAndServe(admin, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }))
	}()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Fatal(err)
	}
	up := websocket.FastHTTPUpgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	srv := &fasthttp.Server{KeepHijackedConns: true, Handler: func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		if !strings.HasPrefix(path, "/ws/ingest/") {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
		child := strings.TrimSuffix(strings.TrimPrefix(path, "/ws/ingest/"), "/")
		_ = up.Upgrade(ctx, func(c *websocket.Conn) { session(c, child) })
	}}
	log.Fatal(srv.Serve(ln))
}

// Hello is the connection_established frame for child.
func Hello(child string) []byte {
	return []byte(`{"type":"connection_established","child_hash":"` + child + `","message":"connected"}`)
}

// AppendAck appends the ack of frame to b.
func AppendAck(b, frame []byte) []byte {
	b = append(b, `{"type":"ack","message_type":"`...)
	b = append(b, field(frame, `"type":"`, '"')...)
	b = append(b, `","status":"success","result":{"stored":true}`...)
	if id := field(frame, `"id":`, ','); id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	return append(b, '}')
}

// field returns the bytes after key up to end (exclusive); nil if absent.
func field(p []byte, key string, end byte) []byte {
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return nil
	}
	rest := p[i+len(key):]
	j := bytes.IndexByte(rest, end)
	if j < 0 {
		return nil
	}
	return rest[:j]
}
