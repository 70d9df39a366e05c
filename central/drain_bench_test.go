package central

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/jackc/pgx/v5"
)

// drainSetting reads a positive integer setting of the drain benchmark
// from the environment (bench/central_drain.sh sets them).
func drainSetting(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkCentralDrain_Postgres drains a backlog into PostgreSQL through
// central's batch endpoint: real HTTP on loopback, a throwaway cluster
// (pgtest), batches of location messages built beforehand as the
// forwarder sends them (gzip at BestSpeed), each edge keeping
// HEARTH_DRAIN_INFLIGHT batches in flight. One op is one batch: run it
// with -benchtime 2000x for a backlog of 1,000,000 messages of 500. The
// homes' batch rate limit is opened (a backlog drain is what it would
// slow down); everything else is central's default configuration.
func BenchmarkCentralDrain_Postgres(b *testing.B) {
	per := drainSetting("HEARTH_DRAIN_BATCH", 500)
	edges := drainSetting("HEARTH_DRAIN_EDGES", 4)
	inflight := drainSetting("HEARTH_DRAIN_INFLIGHT", 2)
	dsn := pgtest.DSN(b)
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir, cfg.DB = "127.0.0.1:0", "127.0.0.1:0", b.TempDir(), dsn
	// A rate far above the drain's, with a burst to match. (Not 1e6/s: the
	// limiter refills by now minus the last admission's now, which goes
	// negative by a few µs when concurrent requests take their clocks out
	// of order, and at 1e6/s that costs whole tokens.)
	cfg.HomeBatchRate, cfg.HomeBatchBurst = 1000, 1e6
	cfg.HomeBatchesInFlight = inflight
	ctx := context.Background()
	st, err := store.OpenWith(ctx, dsn, StoreOptions(cfg))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tokens, kids := make([]string, edges), make([][]string, edges)
	for e := range edges {
		var home string
		if home, tokens[e], err = st.AddHome(ctx, fmt.Sprintf("edge %d", e)); err != nil {
			b.Fatal(err)
		}
		for range 10 {
			kid, err := st.AddChild(ctx, home, "")
			if err != nil {
				b.Fatal(err)
			}
			kids[e] = append(kids[e], kid)
		}
	}
	s, err := New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(ctx)

	// The backlog: distinct fixes, a millisecond apart, an hour old.
	start := time.Now().Add(-time.Hour).UTC()
	bodies := make([][]byte, b.N)
	var raw int
	for i := range bodies {
		body := benchBody(b, per, hearth.KindLocation, kids[i%edges], start.Add(time.Duration(i*per)*time.Millisecond))
		raw += len(body)
		bodies[i] = gzipBest(b, body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: edges * inflight, DisableCompression: true}}
	url := "http://" + s.Addr() + hearth.PathEdgeBatches
	b.SetBytes(int64(raw / len(bodies)))
	b.ResetTimer()
	var wg sync.WaitGroup
	queues := make([]chan int, edges) // each edge's backlog, in order
	for e := range queues {
		queues[e] = make(chan int, b.N/edges+1)
		for range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range queues[e] {
					if err := postBatch(client, url, tokens[e], bodies[i], per); err != nil {
						b.Error(err)
					}
				}
			}()
		}
	}
	for i := range bodies {
		queues[i%edges] <- i
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "msgs/s")
	if b.N > 1 {
		b.Logf("%d messages in %d batches of %d, %d edges × %d in flight; PostgreSQL %s", b.N*per, b.N, per, edges, inflight, pgSettings(b, dsn))
	}
	stats, err := st.Stats(ctx)
	if err != nil || stats["locations"] != int64(b.N*per) {
		b.Fatalf("stored %v (%v), want %d locations", stats["locations"], err, b.N*per)
	}
}

// pgSettings names the server's version and the settings that bound a
// write-heavy load.
func pgSettings(tb testing.TB, dsn string) string {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	var out string
	err = c.QueryRow(ctx, `SELECT format('%s; shared_buffers=%s fsync=%s synchronous_commit=%s wal_level=%s max_wal_size=%s',
		current_setting('server_version'), current_setting('shared_buffers'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('wal_level'), current_setting('max_wal_size'))`).Scan(&out)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// postBatch sends one gzip batch as the forwarder does and checks that
// central stored every message.
func postBatch(c *http.Client, url, token string, body []byte, n int) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("batch: %s: %s", resp.Status, reply)
	}
	if ok := bytes.Count(reply, []byte(`"status":"ok"`)); ok != n {
		return fmt.Errorf("batch: %d of %d messages stored: %.300s", ok, n, reply)
	}
	return nil
}

// gzipBest compresses body as the forwarder does (BestSpeed).
func gzipBest(tb testing.TB, body []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(body); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
