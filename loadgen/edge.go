package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guardianai/hearth"
)

// EdgeConfig is a fleet of simulated edges (hearthd forwarders): each
// has its own home, token and child, makes Rate location messages a
// second into its own queue and sends them as the forwarder does: oldest
// first, in gzip batches of at most BatchMax, one batch at a time, to
// the first of URLs that answers (the next one on a connection error),
// waiting Retry-After on 429 and 503 and backing off on errors. What
// central does not ack stays queued: nothing is dropped.
type EdgeConfig struct {
	URLs     []string // central replicas' base URLs
	Edges    []EdgeCred
	Rate     int           // messages each edge makes per second
	BatchMax int           // messages per batch at most (the forwarder's 500)
	Duration time.Duration // how long edges make messages; then they drain their queues
	Timeout  time.Duration // one request
	Poll     time.Duration // wait when the queue is empty (the forwarder's poll, 5 s)
	// Live, if set, counts as the run goes (for a caller watching a replay).
	Live *EdgeLive
	// AckLog, if set, gets "<child>\t<timestamp>\n" per acked message.
	AckLog io.Writer
}

// EdgeLive counts the messages made and acked so far.
type EdgeLive struct{ Made, Acked atomic.Int64 }

// EdgeCred is one simulated edge's home token and child.
type EdgeCred struct{ Token, Child string }

// EdgeSummary is what a fleet run measured.
type EdgeSummary struct {
	Made, Acked, Rejected int64
	Batches               Histogram // time of each answered 200 batch request
	Refused               map[int]int64
	Errors                int64         // requests without an answer
	Drained               time.Duration // from the end of Duration until every queue was empty
}

type edgeRun struct {
	cfg     EdgeConfig
	client  *http.Client
	live    *EdgeLive
	reject  atomic.Int64
	errs    atomic.Int64
	mu      sync.Mutex
	batches Histogram
	refused map[int]int64
	ackMu   sync.Mutex
}

// RunEdges plays the fleet until every edge has sent what it made, or
// ctx ends.
func RunEdges(ctx context.Context, cfg EdgeConfig) EdgeSummary {
	if cfg.Live == nil {
		cfg.Live = &EdgeLive{}
	}
	r := &edgeRun{cfg: cfg, live: cfg.Live, refused: map[int]int64{}, client: &http.Client{Timeout: cfg.Timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: len(cfg.Edges), DisableCompression: true}}}
	start := time.Now().Truncate(time.Millisecond) // keys at whole milliseconds, as stored (µs)
	genEnd := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for i, e := range cfg.Edges {
		wg.Go(func() { r.edge(ctx, i, e, start, genEnd) })
	}
	wg.Wait()
	s := EdgeSummary{Made: r.live.Made.Load(), Acked: r.live.Acked.Load(), Rejected: r.reject.Load(), Errors: r.errs.Load(),
		Refused: r.refused, Batches: r.batches, Drained: max(time.Since(genEnd), 0)}
	return s
}

// edge is one simulated forwarder. Its messages are fixes of its child a
// millisecond apart from start (unique keys), received when made.
func (r *edgeRun) edge(ctx context.Context, i int, e EdgeCred, start, genEnd time.Time) {
	var queue []hearth.BatchMessage
	var seq uint64
	made := func(now time.Time) { // what the phones sent up to now
		if now.After(genEnd) {
			now = genEnd
		}
		want := now.Sub(start).Seconds() * float64(r.cfg.Rate)
		for ; float64(seq) < want; seq++ {
			ts := start.Add(time.Duration(seq) * time.Millisecond).UTC()
			queue = append(queue, hearth.BatchMessage{Seq: seq + 1, ChildHash: e.Child, Type: string(hearth.KindLocation),
				ReceivedAt: now.UTC().Format(time.RFC3339Nano), Via: hearth.ViaWS,
				Data: []byte(fmt.Sprintf(`{"timestamp":%q,"latitude":1.5,"longitude":2.5}`, ts.Format(time.RFC3339Nano)))})
			r.live.Made.Add(1)
		}
	}
	url := i % len(r.cfg.URLs)
	backoff := time.Second
	time.Sleep(time.Duration(rand.Int64N(int64(time.Second)))) // edges do not start in step
	for ctx.Err() == nil {
		now := time.Now()
		made(now)
		if len(queue) == 0 {
			if now.After(genEnd) {
				return
			}
			time.Sleep(r.cfg.Poll)
			continue
		}
		n := min(len(queue), r.cfg.BatchMax)
		status, wait, err := r.send(ctx, r.cfg.URLs[url], e, queue[:n])
		switch {
		case err != nil:
			r.errs.Add(1)
			url = (url + 1) % len(r.cfg.URLs)
			time.Sleep(backoff + time.Duration(rand.Int64N(int64(backoff))))
			backoff = min(2*backoff, 10*time.Second)
		case status == http.StatusOK:
			queue, backoff = queue[n:], time.Second
		default:
			r.mu.Lock()
			r.refused[status]++
			r.mu.Unlock()
			time.Sleep(wait + time.Duration(rand.Int64N(int64(time.Second))))
		}
	}
}

// send posts one batch; on 200 it counts the acks.
func (r *edgeRun) send(ctx context.Context, base string, e EdgeCred, msgs []hearth.BatchMessage) (int, time.Duration, error) {
	body, err := json.Marshal(map[string]any{"edge_id": "load-" + e.Child[:8], "sent_at": time.Now().UTC().Format(time.RFC3339Nano), "messages": msgs})
	if err != nil {
		return 0, 0, err
	}
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
	zw.Write(body)
	zw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+hearth.PathEdgeBatches, &zb)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	t := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp.StatusCode, time.Duration(min(max(secs, 1), 30)) * time.Second, nil
	}
	took := time.Since(t)
	var br struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	if err := json.Unmarshal(reply, &br); err != nil || len(br.Results) != len(msgs) {
		return 0, 0, fmt.Errorf("batch reply: %v (%d results for %d messages)", err, len(br.Results), len(msgs))
	}
	r.mu.Lock()
	r.batches.Record(took)
	r.mu.Unlock()
	for i, res := range br.Results {
		if res.Status != "ok" {
			r.reject.Add(1)
			continue
		}
		r.live.Acked.Add(1)
		if r.cfg.AckLog != nil {
			var d struct {
				Timestamp string `json:"timestamp"`
			}
			json.Unmarshal(msgs[i].Data, &d)
			r.ackMu.Lock()
			fmt.Fprintf(r.cfg.AckLog, "%s\t%s\n", e.Child, d.Timestamp)
			r.ackMu.Unlock()
		}
	}
	return http.StatusOK, 0, nil
}
