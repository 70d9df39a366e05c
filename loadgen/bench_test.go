package loadgen

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/guardianai/hearth/loadgen/loadgentest"
)

// BenchmarkRun measures the generator against the stand-in server, which
// acks without storing: the ceiling of this machine for the figures of
// bench/RESULTS.md. One op is one acked message.
func BenchmarkRun(b *testing.B) {
	for _, c := range []struct {
		mode   Mode
		phones int
	}{{ModeWS, 1}, {ModeWS, 50}, {ModeHTTP, 10}} {
		b.Run(fmt.Sprintf("%s/phones=%d", c.mode, c.phones), func(b *testing.B) {
			srv := loadgentest.Start(b, loadgentest.Options{})
			cfg := DefaultConfig()
			cfg.URL, cfg.Mode, cfg.Phones, cfg.Duration = srv.URL, c.mode, c.phones, 0
			cfg.Messages = max(1, b.N/c.phones)
			cfg.Timeout = 10 * time.Second
			b.ResetTimer()
			s, err := Run(context.Background(), cfg)
			if err != nil || s.Err() != nil {
				b.Fatalf("Run: %v %v", err, s.Err())
			}
			b.ReportMetric(s.MsgsPerSec, "msgs/s")
			b.ReportMetric(s.P99ms, "p99-ms")
		})
	}
}
