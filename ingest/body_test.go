package ingest

import (
	"errors"
	"strings"
	"testing"
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
			b, err := DecodeBody([]byte(in))
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

// Ensure that each section is judged on its own: null is not present, a
// non-object is invalid, and an inner child_hash must equal the request's.
func TestDecodeBody_Section(t *testing.T) {
	for _, tc := range []struct {
		name, section string
		present       bool
		reason, err   string
	}{
		{"null", `null`, false, "", ""},
		{"empty object", `{}`, true, "", ""},
		{"list", `[` + locInfo + `]`, true, ReasonInvalid, "location_info must be a JSON object"},
		{"empty list", `[]`, true, ReasonInvalid, "location_info must be a JSON object"},
		{"string", `"x"`, true, ReasonInvalid, "must be a JSON object"},
		{"number", `1`, true, ReasonInvalid, "must be a JSON object"},
		{"bool", `false`, true, ReasonInvalid, "must be a JSON object"},
		{"inner child_hash equal", `{"child_hash":"abc","latitude":1}`, true, "", ""},
		{"inner child_hash null", `{"child_hash":null}`, true, "", ""},
		{"inner child_hash different", `{"child_hash":"other"}`, true, ReasonChildMismatch,
			"child_hash in location_info does not match the request's child_hash"},
		{"inner child_hash empty", `{"child_hash":""}`, true, ReasonChildMismatch, "does not match"},
		{"inner child_hash differs in case", `{"child_hash":"ABC"}`, true, ReasonChildMismatch, "does not match"},
		{"inner child_hash number", `{"child_hash":123}`, true, ReasonChildMismatch, "does not match"},
		{"inner child_hash object", `{"child_hash":{"v":"abc"}}`, true, ReasonChildMismatch, "does not match"},
		{"inner child_hash list", `{"child_hash":["abc"]}`, true, ReasonChildMismatch, "does not match"},
		{"inner child_hash key in other case", `{"Child_Hash":"other"}`, true, ReasonChildMismatch, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"child_hash":"abc","screen_time_info":` + stInfo + `,"location_info":` + tc.section + `}`
			b, err := DecodeBody([]byte(in))
			if err != nil {
				t.Fatalf("DecodeBody: %v", err)
			}
			s := b.Sections[1]
			if s.Present != tc.present || s.Reason != tc.reason || !strings.Contains(s.Err, tc.err) || (tc.err == "") != (s.Err == "") {
				t.Errorf("got Present=%v Reason=%q Err=%q\nwant Present=%v Reason=%q Err containing %q",
					s.Present, s.Reason, s.Err, tc.present, tc.reason, tc.err)
			}
			if tc.present && string(s.Data) != tc.section {
				t.Errorf("Data = %s, want %s", s.Data, tc.section)
			}
			if !tc.present && s.Data != nil {
				t.Errorf("Data = %s for a null section", s.Data)
			}
			// The other sections are unaffected.
			if st := b.Sections[0]; !st.Present || st.Err != "" {
				t.Errorf("screen_time_info: %+v", st)
			}
			if sa := b.Sections[2]; sa.Present {
				t.Errorf("site_access_info: %+v", sa)
			}
		})
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
			b, err := DecodeBody([]byte(tc.in))
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
