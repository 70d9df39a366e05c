package apptest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/central/store/pgtest"
	"github.com/guardianai/hearth/loadgen"
	"github.com/jackc/pgx/v5"
)

// Ensure that a fleet of edges (HEARTH_FLEET edges; skipped when unset,
// 1000 in make bench) spread over two hearth-central replicas on one
// PostgreSQL gets every message it made stored exactly once through a
// minute with both replicas down (killed, in-flight batches lost), and
// measure it: msgs/s, batch p99, how long the replay took, peak
// PostgreSQL connections and CPU. Each edge makes HEARTH_FLEET_RATE (2)
// location messages a second and sends them as the forwarder does
// (polling every 5 s, batches of at most 500, Retry-After honoured).
func TestFleet_TwoReplicas_Outage(t *testing.T) {
	edges, _ := strconv.Atoi(os.Getenv("HEARTH_FLEET"))
	if edges <= 0 {
		t.Skip("set HEARTH_FLEET=1000 to run the fleet measurement (make bench)")
	}
	rate := envInt("HEARTH_FLEET_RATE", 2)
	down := time.Minute
	if d, err := time.ParseDuration(os.Getenv("HEARTH_FLEET_DOWN")); err == nil {
		down = d
	}
	steady, after := 30*time.Second, 30*time.Second
	dsn := pgtest.DSN(t)
	ctx := context.Background()

	st, err := store.OpenWith(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	creds := make([]loadgen.EdgeCred, edges)
	for i := range creds {
		home, tok, err := st.AddHome(ctx, fmt.Sprintf("fleet %d", i))
		if err != nil {
			t.Fatal(err)
		}
		kid, err := st.AddChild(ctx, home, "")
		if err != nil {
			t.Fatal(err)
		}
		creds[i] = loadgen.EdgeCred{Token: tok, Child: kid}
	}
	st.Close()

	ports := []string{freeAddr(t), freeAddr(t)}
	cpu := &cpuMeter{}
	start := func() []*Central {
		var cs []*Central
		for _, p := range ports {
			cs = append(cs, StartCentral(t, dsn, "--listen", p))
		}
		return cs
	}
	replicas := start()
	peak := watchPGConns(t, dsn)
	var acks bytes.Buffer
	live := &loadgen.EdgeLive{}
	cfg := loadgen.EdgeConfig{URLs: []string{"http://" + ports[0], "http://" + ports[1]}, Edges: creds, Rate: rate,
		BatchMax: 500, Duration: steady + down + after, Timeout: 30 * time.Second, Poll: 5 * time.Second, Live: live, AckLog: &acks}
	done := make(chan loadgen.EdgeSummary)
	runStart := time.Now()
	go func() { done <- loadgen.RunEdges(ctx, cfg) }()

	time.Sleep(steady)
	steadyAcked := live.Acked.Load()
	for _, c := range replicas {
		cpu.add(c.Proc)
		c.Kill()
	}
	time.Sleep(down)
	backlog := live.Made.Load() - live.Acked.Load()
	replicas = start()
	replay := waitCaughtUp(live, backlog, 5*time.Minute)
	sum := <-done
	for _, c := range replicas {
		cpu.add(c.Proc)
	}
	elapsed := time.Since(runStart)

	stored := storedKeys(t, dsn)
	acked := map[string]int{}
	sc := bufio.NewScanner(&acks)
	for sc.Scan() {
		acked[sc.Text()]++
	}
	missing := 0
	for k := range acked {
		if !stored[k] {
			if missing == 0 {
				t.Logf("acked but not stored: %q", k)
			}
			missing++
		}
	}
	t.Logf("%d edges × %d msgs/s over 2 replicas (PostgreSQL, %d conns each): made %d, acked %d (%d acks, %d keys acked more than once: a batch stored whose answer was lost), rejected %d",
		edges, rate, 4, sum.Made, len(acked), sum.Acked, int(sum.Acked)-len(acked), sum.Rejected)
	t.Logf("steady %.0f msgs/s acked (%d in %s); batch p50 %s p99 %s max %s over %d batches; refused by status %v; requests without answer %d",
		float64(steadyAcked)/steady.Seconds(), steadyAcked, steady, sum.Batches.Quantile(0.5), sum.Batches.Quantile(0.99), sum.Batches.Max(), sum.Batches.Count(), sum.Refused, sum.Errors)
	t.Logf("outage %s: backlog %d messages; replay after restart %s (%.0f msgs/s of backlog); whole run %s",
		down, backlog, replay.Round(100*time.Millisecond), float64(backlog)/replay.Seconds(), elapsed.Round(time.Second))
	t.Logf("peak PostgreSQL connections %d; central CPU %.1f s over the run (%.0f%% of one core); rows in locations %d",
		peak.Load(), cpu.total.Seconds(), 100*cpu.total.Seconds()/elapsed.Seconds(), len(stored))
	if sum.Made != int64(len(acked)) || missing != 0 || len(stored) != len(acked) || sum.Rejected != 0 {
		t.Fatalf("made %d, acked %d keys, %d acked keys not stored, %d rows stored, %d rejected: want every made message acked and stored once",
			sum.Made, len(acked), missing, len(stored), sum.Rejected)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// freeAddr is a loopback address free now, for a server restarted on it.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitCaughtUp waits until the fleet has acked all but what it makes in
// a few seconds of normal sending, and returns how long that took.
func waitCaughtUp(live *loadgen.EdgeLive, backlog int64, limit time.Duration) time.Duration {
	t := time.Now()
	for time.Since(t) < limit {
		if live.Made.Load()-live.Acked.Load() < backlog/20 {
			return time.Since(t)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return limit
}

// watchPGConns samples the database's client connections every 200 ms
// for the rest of the test and keeps the peak.
func watchPGConns(t *testing.T, dsn string) *atomic.Int64 {
	ctx, cancel := context.WithCancel(context.Background())
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			var n int64
			if c.QueryRow(ctx, `SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()`).Scan(&n) == nil && n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait(); c.Close(context.Background()) })
	return &peak
}

// storedKeys returns every location's "<child>\t<timestamp>".
func storedKeys(t *testing.T, dsn string) map[string]bool {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT child, ts FROM locations`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	var child string
	var ts time.Time
	if _, err := pgx.ForEachRow(rows, []any{&child, &ts}, func() error {
		out[child+"\t"+ts.UTC().Format(time.RFC3339Nano)] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// cpuMeter sums the CPU time (user + system) of processes.
type cpuMeter struct{ total time.Duration }

func (m *cpuMeter) add(p *Proc) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	stt, _ := strconv.Atoi(f[12])
	m.total += time.Duration(ut+stt) * 10 * time.Millisecond // USER_HZ 100
}
