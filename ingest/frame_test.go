package ingest

import (
	"errors"
	"strings"
	"testing"
)

// The seed protocol's example frames (docs/protocol.md).
const (
	seedScreenTimeFrame = `{"type": "screen_time", "data": {"date": "2025-12-10", "total_screen_time": 3600,
                                  "app_wise_data": {"com.example.app": {"0": 1800}}}}`
	seedLocationFrame   = `{"type": "location",    "data": {"timestamp": "2025-12-10T10:30:00Z", "latitude": 40.7128, "longitude": -74.0060}}`
	seedSiteAccessFrame = `{"type": "site_access", "data": {"logs": [{"timestamp": "2025-12-10T10:30:00Z", "url": "https://example.com", "accessed": true}]}}`
)

// Ensure that well-formed frames decode: type, id echoed raw, child_hash of
// auth frames, and data verbatim (nil when absent or null).
func TestDecodeFrame_Valid(t *testing.T) {
	for _, tc := range []struct {
		name, in             string
		typ, id, child, data string
	}{
		{"seed screen_time", seedScreenTimeFrame, "screen_time", "", "",
			`{"date": "2025-12-10", "total_screen_time": 3600,
                                  "app_wise_data": {"com.example.app": {"0": 1800}}}`},
		{"seed location", seedLocationFrame, "location", "", "",
			`{"timestamp": "2025-12-10T10:30:00Z", "latitude": 40.7128, "longitude": -74.0060}`},
		{"seed site_access", seedSiteAccessFrame, "site_access", "", "",
			`{"logs": [{"timestamp": "2025-12-10T10:30:00Z", "url": "https://example.com", "accessed": true}]}`},
		{"id number", `{"type":"location","id":42,"data":{}}`, "location", "42", "", `{}`},
		{"id big number", `{"type":"location","id":1e999,"data":{}}`, "location", "1e999", "", `{}`},
		{"id string", `{"id":"a-1","type":"location","data":{}}`, "location", `"a-1"`, "", `{}`},
		{"id object kept raw", `{"type":"location","id":{"n": [1, 2]},"data":{}}`, "location", `{"n": [1, 2]}`, "", `{}`},
		{"id null", `{"type":"ping","id":null}`, "ping", "null", "", ""},
		{"auth", `{"type":"auth","child_hash":"abc123"}`, "auth", "", "abc123", ""},
		{"auth null hash", `{"type":"auth","child_hash":null}`, "auth", "", "", ""},
		{"auth empty hash", `{"type":"auth","child_hash":""}`, "auth", "", "", ""},
		{"auth no hash", `{"type":"auth"}`, "auth", "", "", ""},
		{"ping", `{"type":"ping"}`, "ping", "", "", ""},
		{"data null", `{"type":"location","data":null}`, "location", "", "", ""},
		{"data not an object kept raw", `{"type":"location","data":[1]}`, "location", "", "", `[1]`},
		{"unknown type decodes", `{"type":"selfie","data":{}}`, "selfie", "", "", `{}`},
		{"surrounding whitespace", " \r\n\t{\"type\":\"ping\"}\n ", "ping", "", "", ""},
		{"unknown fields ignored", `{"type":"ping","x":[{}],"y":null}`, "ping", "", "", ""},
		{"unicode escape in type", `{"type":"loc\u0061tion"}`, "location", "", "", ""},
		{"last duplicate wins", `{"type":"auth","type":"ping"}`, "ping", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFrame([]byte(tc.in))
			if err != nil {
				t.Fatalf("DecodeFrame: %v", err)
			}
			if f.Type != tc.typ || string(f.ID) != tc.id || f.ChildHash != tc.child || string(f.Data) != tc.data {
				t.Errorf("got Type=%q ID=%s ChildHash=%q Data=%s\nwant Type=%q ID=%s ChildHash=%q Data=%s",
					f.Type, f.ID, f.ChildHash, f.Data, tc.typ, tc.id, tc.child, tc.data)
			}
			if tc.id == "" && f.ID != nil {
				t.Errorf("ID = %q, want nil when absent", f.ID)
			}
			if tc.data == "" && f.Data != nil {
				t.Errorf("Data = %q, want nil when absent or null", f.Data)
			}
		})
	}
}

// Ensure that every frame that is not a JSON object with a non-empty
// string "type" is a *FrameError with reason malformed_frame and a message
// that says what is wrong.
func TestDecodeFrame_Malformed(t *testing.T) {
	for _, tc := range []struct{ name, in, msg string }{
		{"empty", ``, "empty frame"},
		{"whitespace", " \n\t\r ", "empty frame"},
		{"list", `[{"type":"location"}]`, "frame must be a JSON object, not a list"},
		{"empty list", `[]`, "not a list"},
		{"string", `"location"`, "frame must be a JSON object, not a string"},
		{"number", `42`, "frame must be a JSON object, not a number"},
		{"negative number", `-1`, "not a number"},
		{"null", `null`, "frame must be a JSON object, not null"},
		{"bool", `true`, "not a boolean"},
		{"binary", "\x00\x01\xff\xfe", "not something else (not JSON)"},
		{"text", "hello", "frame must be a JSON object"},
		{"invalid JSON", `{"type":location}`, "frame is not valid JSON: invalid character 'l'"},
		{"invalid JSON offset", `{"type":"ping",}`, "at byte"},
		{"truncated", `{"type":"location","data":{"latitude":1`, "frame is not valid JSON: unexpected end of JSON input"},
		{"just a brace", `{`, "frame is not valid JSON"},
		{"two objects", `{"type":"ping"}{"type":"ping"}`, "frame is not valid JSON: invalid character '{' after top-level value"},
		{"deep nesting", `{"data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "exceeded max depth"},
		{"missing type", `{"data":{}}`, `frame has no "type"`},
		{"empty object", `{}`, `frame has no "type"`},
		{"type null", `{"type":null}`, `frame has no "type"`},
		{"type number", `{"type":1}`, `"type" must be a string`},
		{"type object", `{"type":{"name":"location"}}`, `"type" must be a string`},
		{"type list", `{"type":["location"]}`, `"type" must be a string`},
		{"type bool", `{"type":true}`, `"type" must be a string`},
		{"type empty", `{"type":""}`, `"type" must not be empty`},
		{"child_hash number", `{"type":"auth","child_hash":12345}`, `"child_hash" must be a string`},
		{"child_hash object", `{"type":"auth","child_hash":{}}`, `"child_hash" must be a string`},
		{"child_hash list", `{"type":"auth","child_hash":["abc"]}`, `"child_hash" must be a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFrame([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted as %+v", f)
			}
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %q is not a *FrameError", err, err)
			}
			if fe.Reason != ReasonMalformed {
				t.Errorf("Reason = %q, want %q", fe.Reason, ReasonMalformed)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err, tc.msg)
			}
			if len(err.Error()) > 200 {
				t.Errorf("message is %d bytes long", len(err.Error()))
			}
		})
	}
}
