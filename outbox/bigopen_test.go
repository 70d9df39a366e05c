package outbox

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// BenchmarkOpen_Big opens (and closes) an outbox file of HEARTH_BENCH_BIG_MIB
// MiB (skipped when unset) built once at HEARTH_BENCH_BIG_PATH (default in
// the temp dir) from location-sized messages. With NoFreelistSync, Open
// walks the page tree (prewalk) and bbolt rebuilds the freelist from
// another walk: this is what a restart of a router with a full outbox
// costs before hearthd is ready (the systemd watchdog allows 30 s).
func BenchmarkOpen_Big(b *testing.B) {
	mib, _ := strconv.Atoi(os.Getenv("HEARTH_BENCH_BIG_MIB"))
	if mib <= 0 {
		b.Skip("set HEARTH_BENCH_BIG_MIB (e.g. 1024) to build and open a large outbox")
	}
	path := os.Getenv("HEARTH_BENCH_BIG_PATH")
	if path == "" {
		path = fmt.Sprintf("%s/hearth-bench-outbox-%dMiB.db", os.TempDir(), mib)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() < int64(mib)<<20 {
		fillOutbox(b, path, int64(mib)<<20)
	}
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		o, err := Open(path, Options{CheckMaxBytes: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "open-ms")
		b.ReportMetric(float64(o.Stats().Depth), "messages")
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// fillOutbox appends messages until the file reaches size bytes.
func fillOutbox(b *testing.B, path string, size int64) {
	o, err := Open(path, Options{CheckMaxBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	batch := make([]hearth.Message, 4096)
	for i := 0; o.Stats().FileBytes < size; i++ {
		for j := range batch {
			batch[j] = msg(i*len(batch) + j)
			batch[j].Data = fmt.Appendf(nil, `{"timestamp":"2026-11-29T12:00:00.%09dZ","latitude":51.501234,"longitude":-0.123456}`, i*len(batch)+j)
		}
		if err := o.Store(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
