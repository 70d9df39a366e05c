// Command bare is the stack's ceiling for `make bench`: a fasthttp +
// fasthttp/websocket server that speaks just enough of the device protocol
// for hearth-load's WebSocket phones. It finds a data frame's "type" and
// "id" by scanning the bytes (no JSON decoding), stores nothing, and acks
// at once. hearthd's throughput is measured as a fraction of it.
package main

import (
	"flag"
	"log"
	"net"
	"strings"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth/bench/internal/ack"
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
	if c.WriteMessage(websocket.TextMessage, ack.Hello(child)) != nil {
		return
	}
	var reply []byte
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		reply = ack.Append(reply[:0], p)
		if c.WriteMessage(websocket.TextMessage, reply) != nil {
			return
		}
	}
}
