package apptest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// ackedSet collects the keys of messages a phone saw acked.
type ackedSet struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (a *ackedSet) add(k string) {
	a.mu.Lock()
	a.keys[k] = true
	a.mu.Unlock()
}

// crashPhone sends unique locations over one WebSocket, pipelining a few
// frames, until the connection dies; it records every acked key. It never
// resends: a message whose ack was lost is simply not counted as acked.
func crashPhone(url, child string, base time.Time, acked *ackedSet, stop <-chan struct{}) {
	c, _, err := websocket.DefaultDialer.Dial(strings.Replace(url, "http", "ws", 1)+"/ws/ingest/"+child+"/", nil)
	if err != nil {
		return
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil { // connection_established
		return
	}
	const window = 4
	inflight := map[string]string{} // id → key
	next := 0
	for {
		for len(inflight) < window {
			select {
			case <-stop:
				return
			default:
			}
			ts := base.Add(time.Duration(next) * time.Microsecond).UTC().Format(time.RFC3339Nano)
			id := fmt.Sprint(next)
			frame := fmt.Sprintf(`{"type":"location","id":%q,"data":{"timestamp":%q,"latitude":51.5,"longitude":-0.12}}`, id, ts)
			if c.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
				return
			}
			inflight[id] = child + "@" + ts
			next++
		}
		_, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		var r struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}
		if json.Unmarshal(b, &r) != nil {
			return
		}
		if r.Type == "ack" {
			acked.add(inflight[r.ID])
		}
		delete(inflight, r.ID)
	}
}

// Ensure that every message a phone saw acked survives kill -9 of hearthd
// under load, exactly once, over 20 kills at random moments.
func TestHearthd_Crash_KillUnderLoad(t *testing.T) {
	const kills, phones = 20, 8
	dir := t.TempDir()
	acked := &ackedSet{keys: map[string]bool{}}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	base := time.Now().Add(-time.Hour)
	for k := 0; k < kills; k++ {
		d := StartHearthd(t, dir)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := 0; p < phones; p++ {
			wg.Add(1)
			child := fmt.Sprintf("crash-%d", p)
			// Each round's phones use their own stretch of timestamps.
			start := base.Add(time.Duration(k) * time.Minute)
			go func() { defer wg.Done(); crashPhone(d.URL, child, start, acked, stop) }()
		}
		time.Sleep(time.Duration(20+rng.IntN(250)) * time.Millisecond)
		d.Kill()
		close(stop)
		wg.Wait()
	}
	stored := map[string]int{}
	for _, r := range outboxRecords(t, dir) {
		stored[locationKey(t, r)]++
	}
	for k, n := range stored {
		if n != 1 {
			t.Errorf("%s stored %d times", k, n)
		}
	}
	lost := 0
	for k := range acked.keys {
		if stored[k] != 1 {
			lost++
			if lost < 10 {
				t.Errorf("acked message %s is not in the outbox", k)
			}
		}
	}
	t.Logf("%d kills: %d messages acked, %d stored, %d acked but lost", kills, len(acked.keys), len(stored), lost)
	if len(acked.keys) < kills {
		t.Fatalf("only %d messages acked over %d rounds: the load did not run", len(acked.keys), kills)
	}
}
