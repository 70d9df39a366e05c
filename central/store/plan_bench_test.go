package store

import (
	"syscall"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// BenchmarkPlan_Location measures the store's work before SQL on a batch
// of 500 checked location messages (typed payloads, as central's batch
// path hands them over): the rows of each table, deduplicated and sorted.
func BenchmarkPlan_Location(b *testing.B) {
	const n = 500
	kids := []string{"kid-a", "kid-b", "kid-c"}
	owned := owners{"kid-a": "h", "kid-b": "h", "kid-c": "h"}
	recv := time.Now().Add(-time.Hour).UTC()
	msgs := make([]hearth.Message, n)
	for i := range msgs {
		loc := &hearth.Location{Timestamp: recv.Add(-time.Duration(i) * time.Second), Latitude: 40.7, Longitude: -74}
		msgs[i] = hearth.Message{ChildHash: kids[i%3], Kind: hearth.KindLocation, ReceivedAt: recv, Via: hearth.ViaWS, Payload: hearth.Payload{Location: loc}}
	}
	opts := Options{}.withDefaults()
	run := func() {
		_, r := plan("h", msgs, owned, opts)
		if len(r.locs) != n {
			b.Fatalf("%d rows", len(r.locs))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for range b.N {
		run()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/msg")
	b.ReportMetric(testing.AllocsPerRun(1, run)/n, "allocs/msg")
}

// processCPU returns the user and system CPU time this process has used
// (garbage collection included), steadier than the wall clock on a shared
// machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
