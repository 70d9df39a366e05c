// Command naive is the reference design of `make bench`: the bare server
// (bench/bare) plus the plainest durable store, so that hearthd can be
// compared with what a few hundred lines of the same libraries reach. Each
// connection's goroutine reads a frame, hands it to one writer goroutine
// and waits; the writer takes whatever is queued, puts each frame into a
// bbolt bucket in one transaction (bbolt's defaults: two fdatasyncs per
// commit) and wakes the waiters, whose goroutines then write the acks. No
// validation, no record format, no deletes: a lower bound on the work a
// durable ack needs, not a usable server.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/guardianai/hearth/bench/internal/wsbench"
	bolt "go.etcd.io/bbolt"
)

// put is one frame waiting for its commit.
type put struct {
	frame []byte
	done  chan error
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address for phones")
	admin := flag.String("admin-listen", "127.0.0.1:8001", "address of /readyz")
	dataDir := flag.String("data-dir", "", "directory of the bbolt file (required)")
	linger := flag.Duration("linger", 0, "wait this long for more frames before a commit (0: commit what is queued)")
	noFreelistSync := flag.Bool("no-freelist-sync", false, "bbolt NoFreelistSync")
	files := flag.Int("files", 1, "bbolt files, each with its own writer; connections take them in turn")
	// hearthd's flags that run.sh passes to every server; ignored here.
	for _, f := range []string{"config", "max-conns", "max-conns-per-ip", "rate-per-second", "log-level"} {
		flag.String(f, "", "ignored")
	}
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("naive: --data-dir is required")
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		log.Fatal(err)
	}
	writers := make([]chan put, *files)
	for i := range writers {
		db, err := bolt.Open(filepath.Join(*dataDir, fmt.Sprintf("naive-%d.db", i)), 0o600, &bolt.Options{NoFreelistSync: *noFreelistSync})
		if err != nil {
			log.Fatal(err)
		}
		writers[i] = make(chan put, 4096)
		go write(db, writers[i], *linger)
	}
	var conns atomic.Uint64
	wsbench.Serve(*listen, *admin, func(c *websocket.Conn, child string) {
		serve(c, child, writers[conns.Add(1)%uint64(len(writers))])
	})
}

// write is the single writer: one bbolt transaction per group of frames.
func write(db *bolt.DB, puts chan put, linger time.Duration) {
	var group []put
	for p := range puts {
		group = append(group[:0], p)
		if linger > 0 {
			time.Sleep(linger)
		}
	more:
		for {
			select {
			case p := <-puts:
				group = append(group, p)
			default:
				break more
			}
		}
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("frames"))
			if err != nil {
				return err
			}
			for _, p := range group {
				seq, _ := b.NextSequence()
				if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), p.frame); err != nil {
					return err
				}
			}
			return nil
		})
		for _, p := range group {
			p.done <- err
		}
	}
}

func serve(c *websocket.Conn, child string, puts chan<- put) {
	defer c.Close()
	if c.WriteMessage(websocket.TextMessage, wsbench.Hello(child)) != nil {
		return
	}
	done := make(chan error, 1)
	var reply []byte
	for {
		_, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		puts <- put{frame: p, done: done}
		if err := <-done; err != nil {
			log.Printf("naive: commit: %v", err)
			return
		}
		reply = wsbench.AppendAck(reply[:0], p)
		if c.WriteMessage(websocket.TextMessage, reply) != nil {
			return
		}
	}
}
