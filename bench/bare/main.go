// Command bare is the stack's ceiling for `make bench`: a fasthttp +
// fasthttp/websocket server that speaks just enough of the device protocol
// for hearth-load's WebSocket phones. It finds a data frame's "type" and
// "id" by scanning the bytes (no JSON decoding), stores nothing, and acks
// at once. hearthd's throughput is measured as a fraction of it.
package main

import (
	"bytes"
	"flag"
	"log"
	"net"
	"strings"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address for phones")
	admin := flag.String("admin-listen", "127.0.0.1:8001", "address of /readyz")
	// hearthd's flags that run.sh passes to every server; ignored here.
	for _, f := range []string{"config", "data-dir", "max-conns", "max-conns-per-ip", "rate-per-second", "log-level"} {
		flag.String(f, "", "ignored")
	}
	flag.Parse()
	go func() {
		log.Fatal(fasthttp.ListenAndServe(*admin, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }))
	}()
	ln, err := net.Listen("tcp", *listen)
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
		_ = up.Upgrade(ctx, func(c *websocket.Conn) { serve(c, child) })
	}}
	log.Fatal(srv.Serve(ln))
}

func serve(c *websocket.Conn, child string) {
	defer c.Close()
	hello := `{"type":"connection_established","child_hash":"` + child + `","message":"connected"}`
	if c.WriteMessage(websocket.TextMessage, []byte(hello)) != nil {
		return
	}
	var ack []byte
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		ack = append(ack[:0], `{"type":"ack","message_type":"`...)
		ack = append(ack, field(p, `"type":"`, '"')...)
		ack = append(ack, `","status":"success","result":{"stored":true}`...)
		if id := field(p, `"id":`, ','); id != nil {
			ack = append(ack, `,"id":`...)
			ack = append(ack, id...)
		}
		ack = append(ack, '}')
		if c.WriteMessage(websocket.TextMessage, ack) != nil {
			return
		}
	}
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
