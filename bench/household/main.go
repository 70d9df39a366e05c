// Command household measures, for `make bench`, what one phone at a
// household's pace costs and waits for: it sends locations over one
// WebSocket to hearthd at --rate messages a second (each waiting for its
// ack, as seed phones do), and
//
//   - with --central-db, polls central's SQLite database every millisecond
//     and reports when each message's row became readable there (phone ->
//     central row latency);
//   - reads hearthd's hearth_outbox_written_bytes_total before and, with
//     --drain, after the outbox is empty and its deletes are committed
//     (hearth_outbox_pending_bytes 0), so the bytes the outbox handed the
//     disk per message over its whole life can be computed.
//
// It prints one JSON line.
package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	_ "modernc.org/sqlite"
)

type result struct {
	Sent         int     `json:"sent"`
	Seen         int     `json:"seen"`
	P50ms        float64 `json:"p50_ms"`
	P90ms        float64 `json:"p90_ms"`
	P99ms        float64 `json:"p99_ms"`
	WrittenStart float64 `json:"written_bytes_start"`
	WrittenEnd   float64 `json:"written_bytes_end"`
}

func main() {
	edge := flag.String("edge", "http://127.0.0.1:8000", "hearthd's phone address")
	admin := flag.String("admin", "http://127.0.0.1:8001", "hearthd's admin address (/metrics)")
	centralDB := flag.String("central-db", "", "central's SQLite file, to time rows (empty: no latency)")
	child := flag.String("child", "", "child hash")
	rate := flag.Float64("rate", 10, "messages per second (0: as fast as acks come)")
	n := flag.Int("messages", 100, "messages to send")
	drain := flag.Bool("drain", true, "wait until the outbox is empty and its deletes committed")
	flag.Parse()

	var res result
	res.WrittenStart = metric(*admin, "hearth_outbox_written_bytes_total")
	sent := make([]time.Time, *n)
	var seen []time.Time
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if *centralDB != "" {
		db, err := sql.Open("sqlite", "file:"+*centralDB+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			log.Fatal(err)
		}
		defer db.Close()
		base := rows(db, *child)
		wg.Go(func() { poll(db, *child, base, *n, &mu, &seen, stop) })
	}
	send(*edge, *child, *rate, sent)
	res.Sent = *n
	if *centralDB != "" {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			k := len(seen)
			mu.Unlock()
			if k >= *n || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		var lat []float64
		for i, t := range seen {
			lat = append(lat, float64(t.Sub(sent[i]).Microseconds())/1000)
		}
		res.Seen = len(lat)
		slices.Sort(lat)
		res.P50ms, res.P90ms, res.P99ms = quantile(lat, 0.5), quantile(lat, 0.9), quantile(lat, 0.99)
	}
	if *drain {
		deadline := time.Now().Add(2 * time.Minute)
		for metric(*admin, "hearth_outbox_pending_bytes") != 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	res.WrittenEnd = metric(*admin, "hearth_outbox_written_bytes_total")
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

// send sends len(sent) locations at rate, each after the previous ack.
func send(edge, child string, rate float64, sent []time.Time) {
	u := strings.Replace(edge, "http", "ws", 1) + "/ws/ingest/" + child + "/"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	base := start.Add(-time.Minute)
	for i := range sent {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		}
		ts := base.Add(time.Duration(i) * time.Millisecond).UTC().Format(time.RFC3339Nano)
		frame := fmt.Sprintf(`{"type":"location","id":%d,"data":{"timestamp":%q,"latitude":51.5,"longitude":-0.12}}`, i, ts)
		sent[i] = time.Now()
		if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			log.Fatal(err)
		}
		_, b, err := c.ReadMessage()
		if err != nil {
			log.Fatal(err)
		}
		if !strings.Contains(string(b), `"ack"`) {
			log.Fatalf("message %d not acked: %s", i, b)
		}
	}
}

// poll notes when each new row of child appears (rows come in order: one
// phone, batches oldest first).
func poll(db *sql.DB, child string, base, n int, mu *sync.Mutex, seen *[]time.Time, stop chan struct{}) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		k := rows(db, child) - base
		now := time.Now()
		mu.Lock()
		for len(*seen) < min(k, n) {
			*seen = append(*seen, now)
		}
		mu.Unlock()
	}
}

func rows(db *sql.DB, child string) int {
	var k int
	if err := db.QueryRow(`SELECT count(*) FROM locations WHERE child = ?`, child).Scan(&k); err != nil {
		log.Fatal(err)
	}
	return k
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// metric reads one unlabelled sample from a Prometheus text endpoint.
func metric(admin, name string) float64 {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	log.Fatalf("%s not in %s/metrics", name, admin)
	return 0
}
