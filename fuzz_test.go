package hearth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// edgeWindow is the window the edge checks with: central's, narrowed by a
// minute at both ends so that what the edge acks is still inside
// central's window when central checks it.
func edgeWindow(now time.Time) Window {
	return Window{Now: now, MaxAge: DefaultRetention - time.Minute, MaxFuture: DefaultMaxFuture - time.Minute}
}

// centralWindow is the window central checks an edge's messages with.
func centralWindow(now time.Time) Window {
	return Window{Now: now, MaxAge: DefaultRetention, MaxFuture: DefaultMaxFuture}
}

// FuzzCheck checks every kind in both modes, with the absolute bounds
// only and with the edge's window, against any input: Check never panics;
// a refusal is an *InvalidError with a Code, Field and Reason; an
// accepted payload's canonical Data checks again in ModeStrict to the
// same bytes without a note, and what the edge accepts central accepts.
func FuzzCheck(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range Kinds {
			for _, m := range bothModes {
				checkProperties(t, k, data, Rules{Mode: m, Child: compatChild})
				checkEdgeInCentral(t, k, data, Rules{Mode: m, Child: compatChild}, testNow)
			}
		}
	})
}

// fuzzSeeds are the seed's examples, every row of the seed-compatibility
// table and edge cases of the rules.
func fuzzSeeds() []string {
	url2048 := "https://example.com/" + strings.Repeat("é", (MaxURLLen-len("https://example.com/"))/2)
	seeds := []string{
		seedScreenTime, seedLocation, seedSiteAccess, `{}`, `[]`, `null`, ``, `{"logs":[]}`, `{"":0}`,
		// NUL in app ids and URLs.
		`{"date":"2025-12-10","total_screen_time":1,"app_wise_data":{"a\u0000b":{"0":1}}}`,
		`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://x\u0000.example","accessed":true}]}`,
		"{\"logs\":[{\"timestamp\":\"2025-12-10T10:30:00Z\",\"url\":\"a\x7f\tb\",\"accessed\":true}]}",
		// Years no phone means.
		`{"timestamp":"9999-12-31T23:59:59Z","latitude":0,"longitude":0}`,
		`{"timestamp":"0001-01-01T00:00:00Z","latitude":0,"longitude":0}`,
		`{"date":"9999-12-31","total_screen_time":0,"app_wise_data":{}}`,
		`{"date":"0001-01-01","total_screen_time":0,"app_wise_data":{}}`,
		`{"logs":[{"timestamp":"0000-01-01T00:00:00+00:01","url":"u","accessed":true}]}`,
		// Offsets, and times at the window's edges.
		`{"timestamp":"2025-12-10T16:00:00+05:30","latitude":1,"longitude":1}`,
		`{"timestamp":"2025-12-10 16:00:00+0530","latitude":1,"longitude":1}`,
		`{"timestamp":"` + testNow.Add(-364*24*time.Hour).Format(time.RFC3339) + `","latitude":1,"longitude":1}`,
		`{"timestamp":"` + testNow.Add(-DefaultRetention+30*time.Second).Format(time.RFC3339Nano) + `","latitude":1,"longitude":1}`,
		`{"timestamp":"` + testNow.Add(DefaultMaxFuture-30*time.Second).Format(time.RFC3339Nano) + `","latitude":1,"longitude":1}`,
		`{"date":"` + testNow.Add(-DefaultRetention-24*time.Hour).Format(DateLayout) + `","total_screen_time":1,"app_wise_data":{}}`,
		`{"date":"2025-12-11","total_screen_time":1,"app_wise_data":{}}`,
		// Hours summing past the total.
		`{"date":"2025-12-10","total_screen_time":60,"app_wise_data":{"a":{"0":3600,"1":3600},"b":{"07":"3600","x":1}}}`,
		// A Unicode URL, and one of exactly 2048 bytes.
		`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://例え.jp/ü?q=<x>&y","accessed":"yes"}]}`,
		`{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"` + url2048 + `","accessed":true}]}`,
		// Hostile numbers.
		`{"timestamp":"2025-12-10T10:30:00Z","latitude":-0,"longitude":1e-320}`,
		`{"date":"2025-12-10","total_screen_time":-0.9,"app_wise_data":{"a":{"0":1e15,"1":-1e-9}}}`,
	}
	for _, row := range seedCompat() {
		seeds = append(seeds, row.Data)
	}
	return seeds
}

// checkProperties checks data under r and the properties every answer
// must have; it returns what Check returned.
func checkProperties(t testing.TB, k Kind, data []byte, r Rules) (Checked, error) {
	t.Helper()
	c, err := Check(k, data, r)
	if err != nil {
		var ie *InvalidError
		if !errors.As(err, &ie) {
			t.Fatalf("%s/%s: error %T %q is not an *InvalidError", modeName(r.Mode), k, err, err)
		}
		if ie.Field == "" || ie.Reason == "" || ie.Code == "" {
			t.Fatalf("%s/%s: incomplete refusal %+v", modeName(r.Mode), k, *ie)
		}
		if c.Kind != "" || c.Data != nil || c.Notes != nil || c.Payload != (Payload{}) {
			t.Fatalf("%s/%s: %+v along with error %v", modeName(r.Mode), k, c, err)
		}
		return c, err
	}
	if c.Kind != k || payloadKind(c.Payload) != k {
		t.Fatalf("%s/%s: Kind %q, payload of %q", modeName(r.Mode), k, c.Kind, payloadKind(c.Payload))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, c.Data); err != nil || !bytes.Equal(compact.Bytes(), c.Data) || !utf8.Valid(c.Data) {
		t.Fatalf("%s/%s: Data is not compact JSON: %q (%v)", modeName(r.Mode), k, c.Data, err)
	}
	for _, n := range c.Notes {
		if ignored, ok := noteReasons[n.Reason]; !ok || ignored != n.Ignored || n.Field == "" || n.Text == "" {
			t.Fatalf("%s/%s: note %+v", modeName(r.Mode), k, n)
		}
		if r.Mode == ModeStrict && n.Reason != NoteURLControl {
			t.Fatalf("strict/%s: note %+v", k, n)
		}
	}
	// (a) The canonical form checks again in ModeStrict, unchanged and
	// without a note; a site_access without visits is the exception: it
	// has no rows, so it is acknowledged but never stored or forwarded.
	again, err := Check(k, c.Data, Rules{Mode: ModeStrict, Window: r.Window})
	switch {
	case c.Payload.Rows() == 0:
		if InvalidCode(err) != CodeInvalid || !strings.Contains(err.Error(), "logs: must not be empty") {
			t.Fatalf("%s/%s: canonical %s without rows: %v", modeName(r.Mode), k, c.Data, err)
		}
	case err != nil:
		t.Fatalf("%s/%s: canonical %s refused in strict mode: %v", modeName(r.Mode), k, c.Data, err)
	case !bytes.Equal(again.Data, c.Data) || len(again.Notes) != 0:
		t.Fatalf("%s/%s: canonical form not stable:\n1st %s\n2nd %s, notes %v", modeName(r.Mode), k, c.Data, again.Data, again.Notes)
	}
	// What ModeStrict accepts, ModeSeed accepts the same way.
	if r.Mode == ModeStrict {
		seed, err := Check(k, data, Rules{Mode: ModeSeed, Window: r.Window, Child: r.Child})
		if err != nil || !bytes.Equal(seed.Data, c.Data) || fmt.Sprint(noteList(seed.Notes)) != fmt.Sprint(noteList(c.Notes)) {
			t.Fatalf("%s: strict accepts %s, seed: %s, %v, %v", k, c.Data, seed.Data, seed.Notes, err)
		}
	}
	return c, nil
}

// checkEdgeInCentral checks data with the edge's window at now and, when
// the edge accepts it, its canonical form with central's window at the
// same now (property b).
func checkEdgeInCentral(t testing.TB, k Kind, data []byte, r Rules, now time.Time) bool {
	t.Helper()
	r.Window = edgeWindow(now)
	c, err := checkProperties(t, k, data, r)
	if err != nil || c.Payload.Rows() == 0 {
		return false
	}
	central, err := Check(k, c.Data, Rules{Mode: ModeStrict, Window: centralWindow(now)})
	if err != nil {
		t.Fatalf("%s/%s: the edge accepts %s at %s, central refuses it: %v", modeName(r.Mode), k, c.Data, now.Format(time.RFC3339), err)
	}
	if !bytes.Equal(central.Data, c.Data) || len(central.Notes) != 0 {
		t.Fatalf("%s/%s: central reads %s as %s, notes %v", modeName(r.Mode), k, c.Data, central.Data, central.Notes)
	}
	return true
}

// payloadKind is the kind of the one field p has set; "" when it has
// none or more than one.
func payloadKind(p Payload) Kind {
	var kinds []Kind
	if p.ScreenTime != nil {
		kinds = append(kinds, KindScreenTime)
	}
	if p.Location != nil {
		kinds = append(kinds, KindLocation)
	}
	if p.SiteAccess != nil {
		kinds = append(kinds, KindSiteAccess)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}
