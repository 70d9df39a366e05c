// Command bare is the stack's ceiling for `make bench`: a fasthttp +
// fasthttp/websocket server that speaks just enough of the device protocol
// for hearth-load's WebSocket phones. It finds a data frame's "type" and
// "id" by scanning the bytes (no JSON decoding), stores nothing, and acks
// at once. hearthd's throughput is measured as a fraction of it.
package main

import (
	"flag"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth/bench/internal/wsbench"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address for phones")
	admin := flag.String("admin-listen", "127.0.0.1:8001", "address of /readyz")
	// hearthd's flags that run.sh passes to every server; ignored here.
	for _, f := range []string{"config", "data-dir", "max-conns", "max-conns-per-ip", "rate-per-second", "log-level"} {
		flag.String(f, "", "ignored")
	}
	flag.Parse()
	wsbench.Serve(*listen, *admin, serve)
}

func serve(c *websocket.Conn, child string) {
	defer c.Close()
	if c.WriteMessage(websocket.TextMessage, wsbench.Hello(child)) != nil {
		return
	}
	var reply []byte
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		reply = wsbench.AppendAck(reply[:0], p)
		if c.WriteMessage(websocket.TextMessage, reply) != nil {
			return
		}
	}
}
