package hearth

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// FuzzSplitObject checks that splitObject, whenever it answers, gives the
// members encoding/json gives.
func FuzzSplitObject(f *testing.F) {
	for _, s := range []string{`{"timestamp":"2025-12-10T10:30:00Z","latitude":1,"longitude":2}`, `{"a":1,"a":2}`,
		`{ "x" : [1, "}", {"y": null}] , "z":"a\"b" }`, `{}`, `{"k\u0061":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSpace(b)
		if len(b) == 0 || b[0] != '{' {
			return
		}
		fast, ok := splitObject(b)
		if !ok {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("split %q, which encoding/json refuses: %v", b, err)
		}
		if len(fast) != len(want) {
			t.Fatalf("%q: %d members, encoding/json %d", b, len(fast), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(fast[k], v) {
				t.Fatalf("%q: member %q = %q, encoding/json %q", b, k, fast[k], v)
			}
		}
	})
}

// FuzzAppendLocation checks that a location is encoded as json.Marshal
// encodes it.
func FuzzAppendLocation(f *testing.F) {
	f.Add(int64(1765362600), int64(123456789), 40.7128, -74.006)
	f.Add(int64(0), int64(0), 1e-7, -1e21)
	f.Add(int64(-62135596800), int64(1), 0.0, math.SmallestNonzeroFloat64)
	f.Fuzz(func(t *testing.T, sec, nsec int64, lat, lon float64) {
		if math.IsNaN(lat) || math.IsInf(lat, 0) || math.IsNaN(lon) || math.IsInf(lon, 0) {
			return
		}
		l := Location{Timestamp: time.Unix(sec%(1<<35), nsec%1e9).UTC(), Latitude: lat, Longitude: lon}
		want, err := json.Marshal(&l)
		if err != nil {
			return // a year outside 0-9999: never a checked location
		}
		if got := appendLocation(nil, &l); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}
