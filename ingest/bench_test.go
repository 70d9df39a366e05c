package ingest

import (
	"testing"

	"github.com/guardianai/hearth"
)

// BenchmarkDecodeValidate measures the CPU a data frame costs before it is
// stored: decoding the frame and validating its payload.
func BenchmarkDecodeValidate(b *testing.B) {
	frames := map[string][]byte{
		"location":    []byte(`{"type":"location","id":17,"data":{"timestamp":"2025-12-10T10:30:00.123456Z","latitude":40.7128,"longitude":-74.0060}}`),
		"screen_time": []byte(`{"type":"screen_time","data":{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":{"com.example.app":{"0":1800,"13":600},"com.other":{"9":60}}}}`),
	}
	for name, frame := range frames {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f, err := DecodeFrame(frame)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := hearth.Check(hearth.Kind(f.Type), f.Data, hearth.Rules{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
