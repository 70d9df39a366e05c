package outbox

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/guardianai/hearth"
)

// BenchmarkAppend_1Writer is one phone waiting for each ack: one message per
// Append, each paying a full commit.
func BenchmarkAppend_1Writer(b *testing.B) {
	benchmarkAppend(b, 1)
}

// BenchmarkAppend_50Writers is 50 phones at once: their appends share commits.
func BenchmarkAppend_50Writers(b *testing.B) {
	benchmarkAppend(b, 50)
}

func benchmarkAppend(b *testing.B, writers int) {
	o := mustOpen(b, tempPath(b), Options{})
	m := []hearth.Message{msg(1)}
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := o.Store(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	s := o.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(max(s.Commits, 1)), "msgs/commit")
}

// BenchmarkRequestEncode is what an append costs its caller before the
// writer takes it: a pooled request and the message's record (its batch
// JSON fragment). Per message; allocations are the edge's budget.
func BenchmarkRequestEncode(b *testing.B) {
	m := []hearth.Message{msg(1)}
	b.ReportAllocs()
	for b.Loop() {
		r := newRequest(context.Background(), opAppend)
		r.encode(m)
		r.release()
	}
}
