package central

import (
	"bytes"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// benchBody returns the JSON body of a batch of n messages as the
// forwarder writes it (compact, json.Encoder without HTML escaping), of
// kind for children kids, received around at.
func benchBody(tb testing.TB, n int, kind hearth.Kind, kids []string, at time.Time) []byte {
	tb.Helper()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `{"edge_id":"edge-bench","sent_at":"%s","messages":[`, at.Add(time.Second).UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		recv := at.Add(time.Duration(i) * time.Millisecond)
		m := hearth.BatchMessage{Seq: uint64(1000 + i), ChildHash: kids[i%len(kids)], Type: string(kind),
			ReceivedAt: recv.UTC().Format(time.RFC3339Nano), Via: hearth.ViaWS, Data: benchData(kind, i, recv)}
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m); err != nil {
			tb.Fatal(err)
		}
		buf.Truncate(buf.Len() - 1) // the Encoder's newline
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// benchData is the canonical data of message i of kind, as an edge stores it.
func benchData(kind hearth.Kind, i int, recv time.Time) []byte {
	var p hearth.Payload
	ts := recv.Add(-time.Second).Truncate(time.Millisecond) // distinct when recv is
	switch kind {
	case hearth.KindLocation:
		p.Location = &hearth.Location{Timestamp: ts, Latitude: 40.7128 + float64(i)/1e5, Longitude: -74.006 - float64(i)/1e5}
	case hearth.KindSiteAccess:
		p.SiteAccess = &hearth.SiteAccess{Logs: []hearth.SiteVisit{{Timestamp: ts, URL: "https://example.com/a", Accessed: true}, {Timestamp: ts, URL: "https://example.com/b"}}}
	case hearth.KindScreenTime:
		apps := map[string]map[int]int64{}
		for a := range 3 {
			apps[fmt.Sprintf("com.example.app%d", a)] = map[int]int64{(i + a) % 24: 600, (i + a + 1) % 24: 60}
		}
		p.ScreenTime = &hearth.ScreenTime{Date: recv.Format(hearth.DateLayout), TotalSeconds: int64(i % 86400), Apps: apps}
	}
	var v any = p.Location
	if p.SiteAccess != nil {
		v = p.SiteAccess
	} else if p.ScreenTime != nil {
		v = p.ScreenTime
	}
	out, _ := json.Marshal(v)
	return out
}

// benchDecode measures central's work on a batch body before SQL: the
// body bytes (identity or gzip) to the typed messages handed to the store,
// reported per message.
func benchDecode(b *testing.B, kind hearth.Kind, gzipped bool) {
	const n = 500
	at := time.Now().Add(-time.Hour).UTC()
	raw := benchBody(b, n, kind, []string{"kid-a", "kid-b", "kid-c"}, at)
	body, enc := raw, ""
	if gzipped {
		body, enc = gz(b, string(raw)), "gzip"
	}
	lim := BatchLimits{MaxDecompressed: 4 << 20, MaxMessages: 10000}
	retention := hearth.DefaultRetention
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for range b.N {
		batch, err := DecodeBatch(body, enc, lim)
		if err != nil {
			b.Fatal(err)
		}
		clock := MeasureEdgeClock(batch.SentAt, batch.SentAt, 5*time.Second)
		msgs, _, _ := PrepareMessages(batch.Messages, clock, retention)
		if len(msgs) != n {
			b.Fatalf("%d of %d messages prepared", len(msgs), n)
		}
	}
	b.StopTimer()
	per := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/msg")
	// CPU time of the whole process (garbage collection included): on a
	// machine shared with other work it is steadier than the wall clock.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/per, "cpu-ns/msg")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
		batch, _ := DecodeBatch(body, enc, lim)
		PrepareMessages(batch.Messages, MeasureEdgeClock(batch.SentAt, batch.SentAt, 5*time.Second), retention)
	}))/n, "allocs/msg")
	b.ReportMetric(float64(len(raw))/n, "bytes/msg")
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkDecodeBatch_Location(b *testing.B)     { benchDecode(b, hearth.KindLocation, false) }
func BenchmarkDecodeBatch_LocationGzip(b *testing.B) { benchDecode(b, hearth.KindLocation, true) }
func BenchmarkDecodeBatch_SiteAccess(b *testing.B)   { benchDecode(b, hearth.KindSiteAccess, false) }
func BenchmarkDecodeBatch_ScreenTime(b *testing.B)   { benchDecode(b, hearth.KindScreenTime, false) }
