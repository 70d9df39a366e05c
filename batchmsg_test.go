package hearth

import (
	"reflect"
	"testing"
	"time"
)

// sameCheck fails t unless CheckStrict answers data of kind k exactly as
// Check in ModeStrict does: the same payload, or the same refusal.
func sameCheck(t *testing.T, k Kind, data []byte, w Window) {
	t.Helper()
	want, werr := Check(k, data, Rules{Mode: ModeStrict, Window: w})
	got, gerr := CheckStrict(k, data, w)
	switch {
	case (werr == nil) != (gerr == nil):
		t.Fatalf("%s %q: CheckStrict error %v, Check error %v", k, data, gerr, werr)
	case werr != nil && (werr.Error() != gerr.Error() || InvalidCode(werr) != InvalidCode(gerr)):
		t.Fatalf("%s %q: CheckStrict refuses with %v, Check with %v", k, data, gerr, werr)
	case werr == nil && !reflect.DeepEqual(want.Payload, got):
		t.Fatalf("%s %q: CheckStrict payload %s, Check %s", k, data, Payload.encode(got), want.Data)
	}
}

// FuzzOnePassCheck checks that central's one-pass decoder never differs
// from Check in ModeStrict, with the absolute bounds only and with
// central's window.
func FuzzOnePassCheck(f *testing.F) {
	for _, seed := range append(fuzzSeeds(), canonicalSeeds()...) {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range Kinds {
			sameCheck(t, k, data, Window{})
			sameCheck(t, k, data, centralWindow(testNow))
		}
	})
}

// canonicalSeeds are payloads in the form edges forward, and near misses.
func canonicalSeeds() []string {
	return []string{
		`{"timestamp":"2025-12-10T10:30:00Z","latitude":40.7128,"longitude":-74.006}`,
		`{"timestamp":"2025-12-10T10:30:00.123+01:00","latitude":-90,"longitude":180}`,
		` { "longitude" : 2 , "latitude" : 1e1 , "timestamp" : "2025-12-10T10:30:00Z" } `,
		`{"timestamp":"2025-12-10T10:30:00Z","latitude":90.0000001,"longitude":0}`,
		`{"timestamp":"2025-12-10T10:30:00Z","latitude":1,"latitude":2,"longitude":0}`,
		`{"timestamp":"2025-12-10T10:30:00Z","latitude":1,"longitude":0,"child_hash":"kid"}`,
		`{"timestamp":"2025-12-10T10:30:00Z","latitude":-0,"longitude":1E-400}`,
		`{"timestamp":"2025-12-10T10:30:00Z","latitude":1,"longitude":1e400}`,
		`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com/a","accessed":true},{"timestamp":"2025-12-10T10:31:00Z","url":"https://é.example/b","accessed":false}]}`,
		`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"a\/b","accessed":true}]}`,
		`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"","accessed":true}]}`,
		`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"u","accessed":null}]}`,
		`{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":{"com.a":{"0":60,"7":1800,"23":3600},"com.b":{}}}`,
		`{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":{"com.a":{"07":60}}}`,
		`{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":{"com.a":{"24":60}}}`,
		`{"date":"2025-12-10","total_screen_time":1e3,"app_wise_data":{"com.a":{"1":1.0}}}`,
		`{"date":"2025-12-10","total_screen_time":0,"app_wise_data":{"com.a":{"1":1},"com.a":{"2":2}}}`,
		`{"date":"2025-12-10","total_screen_time":-0,"app_wise_data":{"":{"1":1}}}`,
		`{"date":"2025-1-10","total_screen_time":0,"app_wise_data":{}}`,
	}
}

// Ensure that the payloads edges forward take the one-pass path (or the
// fast path could silently never run) and give Check's payload.
func TestCheckStrict_CanonicalTakesFastPath(t *testing.T) {
	w := centralWindow(testNow)
	for _, k := range Kinds {
		for _, seed := range append(fuzzSeeds(), canonicalSeeds()...) {
			c, err := Check(k, []byte(seed), Rules{Mode: ModeSeed, Window: edgeWindow(testNow)})
			if err != nil || c.Payload.Rows() == 0 {
				continue
			}
			if _, ok := scanPayload(k, c.Data, w); !ok {
				t.Errorf("%s %s: canonical data not taken by the one-pass decoder", k, c.Data)
			}
			sameCheck(t, k, c.Data, w)
		}
	}
}

// Ensure that a location in the form edges forward is decoded with one
// allocation (the Location) and the window applied.
func TestCheckStrict_Location(t *testing.T) {
	data := []byte(`{"timestamp":"2025-12-10T10:30:00.5Z","latitude":40.7128,"longitude":-74.006}`)
	w := centralWindow(testNow)
	var p Payload
	var err error
	if n := testing.AllocsPerRun(100, func() { p, err = CheckStrict(KindLocation, data, w) }); n > 1 {
		t.Errorf("%v allocations, want 1", n)
	}
	want := Location{Timestamp: time.Date(2025, 12, 10, 10, 30, 0, 5e8, time.UTC), Latitude: 40.7128, Longitude: -74.006}
	if err != nil || *p.Location != want {
		t.Fatalf("%+v %v", p.Location, err)
	}
	if _, err := CheckStrict(KindLocation, data, centralWindow(testNow.AddDate(2, 0, 0))); InvalidCode(err) != CodeTooOld {
		t.Fatalf("two years later: %v, want %s", err, CodeTooOld)
	}
}
