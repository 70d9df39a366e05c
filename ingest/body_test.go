package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/guardianai/hearth"
)

const (
	stInfo  = `{"date":"2025-12-10","total_screen_time":3600,"app_wise_data":{"com.example.app":{"0":1800}}}`
	locInfo = `{"timestamp":"2025-12-10T10:30:00Z","latitude":40.7128,"longitude":-74.006}`
	saInfo  = `{"logs":[{"timestamp":"2025-12-10T10:30:00Z","url":"https://example.com","accessed":true}]}`
)

// Ensure that a body with any subset of the three sections decodes: the
// child hash, and for each section whether it is present and its raw data.
func TestDecodeBody_Sections(t *testing.T) {
	infos := [3]string{stInfo, locInfo, saInfo}
	for mask := 0; mask < 8; mask++ {
		parts := []string{`"child_hash":"abc"`}
		for i, name := range sectionNames {
			if mask&(1<<i) != 0 {
				parts = append(parts, `"`+name+`":`+infos[i])
			}
		}
		in := "{" + strings.Join(parts, ", ") + "}"
		t.Run(in, func(t *testing.T) {
			b, err := DecodeBody([]byte(in), hearth.ModeSeed)
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			if b.ChildHash != "abc" {
				t.Errorf("ChildHash = %q", b.ChildHash)
			}
			for i, s := range b.Sections {
				want := mask&(1<<i) != 0
				if s.Present != want || s.Err != "" || s.Reason != "" {
					t.Errorf("%s: Present=%v Err=%q Reason=%q, want Present=%v and no error", sectionNames[i], s.Present, s.Err, s.Reason, want)
				}
				if want && string(s.Data) != infos[i] {
					t.Errorf("%s: Data = %s, want %s", sectionNames[i], s.Data, infos[i])
				}
				if !want && s.Data != nil {
					t.Errorf("%s: Data = %s for an absent section", sectionNames[i], s.Data)
				}
			}
		})
	}
}

// Ensure that each section is judged on its own: null is absent; in the
// seed's mode a falsy value ({}, [], "", 0, false) is "not provided" and
// site_access_info may be a bare list of visits, while protocol 2 refuses
// both; other non-objects are invalid. A child_hash inside a section is
// left to hearth.Check.
func TestDecodeBody_Section(t *testing.T) {
	for _, tc := range []struct {
		name, field, section string
		mode                 hearth.Mode
		present              bool
		reason, err, data    string
	}{
		{"null", "location_info", `null`, hearth.ModeSeed, false, "", "", ""},
		{"null strict", "location_info", `null`, hearth.ModeStrict, false, "", "", ""},
		{"empty object", "location_info", `{}`, hearth.ModeSeed, false, "", "", ""},
		{"empty object strict", "location_info", `{ }`, hearth.ModeStrict, true, ReasonInvalid, "must be a non-empty JSON object", ""},
		{"empty list", "location_info", `[]`, hearth.ModeSeed, false, "", "", ""},
		{"empty string", "location_info", `""`, hearth.ModeSeed, false, "", "", ""},
		{"zero", "location_info", `0`, hearth.ModeSeed, false, "", "", ""},
		{"false", "location_info", `false`, hearth.ModeSeed, false, "", "", ""},
		{"false strict", "location_info", `false`, hearth.ModeStrict, true, ReasonInvalid, "must be a non-empty JSON object", ""},
		{"list", "location_info", `[` + locInfo + `]`, hearth.ModeSeed, true, ReasonInvalid, "location_info must be a non-empty JSON object", ""},
		{"string", "location_info", `"x"`, hearth.ModeSeed, true, ReasonInvalid, "must be a non-empty JSON object", ""},
		{"number", "location_info", `1`, hearth.ModeSeed, true, ReasonInvalid, "must be a non-empty JSON object", ""},
		{"true", "location_info", `true`, hearth.ModeSeed, true, ReasonInvalid, "must be a non-empty JSON object", ""},
		{"inner child_hash kept for Check", "location_info", `{"child_hash":"other"}`, hearth.ModeSeed, true, "", "", `{"child_hash":"other"}`},
		{"site_access_info as a list", "site_access_info", `[{"url":"x"}]`, hearth.ModeSeed, true, "", "", `{"logs":[{"url":"x"}]}`},
		{"site_access_info as a list strict", "site_access_info", `[{"url":"x"}]`, hearth.ModeStrict, true, ReasonInvalid, "must be a non-empty JSON object", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"child_hash":"abc","screen_time_info":` + stInfo + `,"` + tc.field + `":` + tc.section + `}`
			b, err := DecodeBody([]byte(in), tc.mode)
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			i := 1
			if tc.field == "site_access_info" {
				i = 2
			}
			s := b.Sections[i]
			if s.Present != tc.present || s.Reason != tc.reason || !strings.Contains(s.Err, tc.err) || (tc.err == "") != (s.Err == "") {
				t.Errorf("got Present=%v Reason=%q Err=%q\nwant Present=%v Reason=%q Err containing %q",
					s.Present, s.Reason, s.Err, tc.present, tc.reason, tc.err)
			}
			want := tc.data
			if want == "" && tc.present {
				want = tc.section
			}
			if string(s.Data) != want {
				t.Errorf("Data = %s, want %s", s.Data, want)
			}
			if (tc.data != "" && tc.data != tc.section) != (len(s.Notes) == 1) {
				t.Errorf("Notes = %v", s.Notes)
			}
			if st := b.Sections[0]; !st.Present || st.Err != "" {
				t.Errorf("screen_time_info: %+v", st)
			}
		})
	}
}

// Ensure that a body that is not UTF-8 is refused whole, as the seed
// answered 400 to a body it could not read.
func TestDecodeBody_InvalidUTF8(t *testing.T) {
	_, err := DecodeBody([]byte("{\"child_hash\":\"abc\",\"location_info\":{\"x\":\"\xff\"}}"), hearth.ModeSeed)
	var be *BodyError
	if !errors.As(err, &be) || !strings.Contains(be.Msg, "UTF-8") {
		t.Fatalf("err = %v, want a *BodyError naming UTF-8", err)
	}
}

// Ensure that a body that is not a JSON object, or has no usable
// child_hash, is a *BodyError that says what is wrong.
func TestDecodeBody_Error(t *testing.T) {
	for _, tc := range []struct{ name, in, msg string }{
		{"empty", ``, "body must be a JSON object with child_hash, not empty"},
		{"whitespace", "\n\t ", "not empty"},
		{"list", `[{"child_hash":"abc"}]`, "body must be a JSON object with child_hash, not a list"},
		{"string", `"abc"`, "not a string"},
		{"number", `12`, "not a number"},
		{"null", `null`, "not null"},
		{"bool", `true`, "not a boolean"},
		{"binary", "\xff\x00", "not something else (not JSON)"},
		{"form encoded", `child_hash=abc`, "body must be a JSON object"},
		{"invalid JSON", `{"child_hash":abc}`, "body is not valid JSON: invalid character 'a'"},
		{"truncated", `{"child_hash":"abc","location_info":{`, "body is not valid JSON: unexpected end of JSON input"},
		{"trailing data", `{"child_hash":"abc"} x`, "body is not valid JSON"},
		{"missing child_hash", `{"location_info":` + locInfo + `}`, "child_hash is required and must be a non-empty string"},
		{"empty object", `{}`, "child_hash is required"},
		{"child_hash empty", `{"child_hash":""}`, "child_hash is required and must be a non-empty string"},
		{"child_hash null", `{"child_hash":null}`, "child_hash is required"},
		{"child_hash number", `{"child_hash":123}`, "must be a non-empty string"},
		{"child_hash object", `{"child_hash":{"id":"abc"}}`, "must be a non-empty string"},
		{"child_hash list", `{"child_hash":["abc"]}`, "must be a non-empty string"},
		{"child_hash bool", `{"child_hash":true}`, "must be a non-empty string"},
		{"child_hash in other case", `{"Child_Hash":"abc"}`, "child_hash is required"},
		{"child_hash only inside a section", `{"location_info":{"child_hash":"abc"}}`, "child_hash is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := DecodeBody([]byte(tc.in), hearth.ModeSeed)
			if err == nil {
				t.Fatalf("accepted as %+v", b)
			}
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("error %T %q is not a *BodyError", err, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err, tc.msg)
			}
			if b.ChildHash != "" {
				t.Errorf("ChildHash %q returned along with an error", b.ChildHash)
			}
		})
	}
}
