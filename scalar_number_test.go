package hearth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Ensure that isJSONNumber accepts exactly what encoding/json reads as a
// number, so that parseFloat refuses what it refused before.
func TestIsJSONNumber_AgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "1", "-12", "1.5", "0.001", "1e5", "1E+5", "-1.25e-3", "51.5007",
		"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "Inf", "-Inf", "NaN", "1_000",
		"1.5.2", "1e5e5", "- 1", "1 ", "\"1\"", "true", "1e400",
	} {
		var f float64
		jsonOK := json.Unmarshal([]byte(s), &f) == nil
		_, _, err := parseFloat(json.RawMessage(s))
		if s == "\"1\"" { // a number in a string is the seed's, read apart
			continue
		}
		if (err == nil) != jsonOK {
			t.Errorf("parseFloat(%q) err=%v, encoding/json ok=%v", s, err, jsonOK)
		}
	}
}

// FuzzParseFloat checks parseFloat against encoding/json on any input.
func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"0", "-1.5e3", "1e400", "0x1p3", "01", "-Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.HasPrefix(strings.TrimSpace(s), `"`) || strings.Trim(s, " \t\n\r") != string(bytes.TrimSpace([]byte(s))) {
			return // a quoted number is read apart; raw values never carry non-JSON spaces
		}
		var want float64
		jsonErr := json.Unmarshal([]byte(s), &want)
		got, _, err := parseFloat(json.RawMessage(s))
		if (err == nil) != (jsonErr == nil) || err == nil && got != want {
			t.Fatalf("parseFloat(%q) = %v, %v; encoding/json %v, %v", s, got, err, want, jsonErr)
		}
	})
}

// FuzzJSONString checks jsonString against json.Unmarshal into a string.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`"2025-12-10T10:30:00Z"`, `""`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `"a"b"`, ` "x" `, `"x`, "\"\x01\"", `1`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want string
		jsonErr := json.Unmarshal([]byte(s), &want)
		got, ok := jsonString(json.RawMessage(s))
		if ok != (jsonErr == nil) || ok && got != want {
			t.Fatalf("jsonString(%q) = %q, %v; json.Unmarshal %q, %v", s, got, ok, want, jsonErr)
		}
	})
}
