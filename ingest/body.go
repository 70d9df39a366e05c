package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/guardianai/hearth"
)

// sectionNames maps the HTTP fallback's body fields to kinds, in the order
// of hearth.Kinds.
var sectionNames = [...]string{"screen_time_info", "location_info", "site_access_info"}

// Body is a decoded HTTP fallback request.
type Body struct {
	ChildHash string
	Sections  [3]Section // indexed like hearth.Kinds
}

// Section is one *_info member of the body.
type Section struct {
	Present bool
	Data    json.RawMessage // the payload object for hearth.Check
	Notes   []hearth.Note   // how the section's shape was normalised (ModeSeed)
	Err     string          // why the section cannot be used, when it is malformed
	Reason  string          // metric label for Err
}

// BodyError is a body that cannot be read at all (HTTP 400).
type BodyError struct{ Msg string }

func (e *BodyError) Error() string { return e.Msg }

// DecodeBody decodes an HTTP fallback body. A body that is not UTF-8 JSON
// object or has no usable child_hash is a *BodyError, as the seed answered
// 400 to a body it could not read; a malformed section is reported in its
// Section and leaves the others usable. Members other than child_hash and
// the three sections are ignored, as the seed ignored them.
func DecodeBody(b []byte, mode hearth.Mode) (Body, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		what := "empty"
		if len(b) > 0 {
			what = jsonKind(b[0])
		}
		return Body{}, &BodyError{"body must be a JSON object with child_hash, not " + what}
	}
	if !utf8.Valid(b) {
		return Body{}, &BodyError{"body is not valid UTF-8"}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Body{}, &BodyError{"body is not valid JSON: " + jsonReason(err)}
	}
	var body Body
	if err := json.Unmarshal(raw["child_hash"], &body.ChildHash); err != nil || body.ChildHash == "" {
		return Body{}, &BodyError{"child_hash is required and must be a non-empty string"}
	}
	for i, name := range sectionNames {
		body.Sections[i] = decodeSection(name, raw[name], mode)
	}
	return body, nil
}

// decodeSection reads one *_info member. The seed took a falsy member
// ({}, [], "", 0, false) as "not provided" and site_access_info as a bare
// list of visits; ModeStrict refuses both.
func decodeSection(name string, raw json.RawMessage, mode hearth.Mode) Section {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Section{}
	}
	s := Section{Present: true, Data: raw}
	switch {
	case falsy(raw) && mode == hearth.ModeSeed:
		return Section{}
	case raw[0] == '{' && !falsy(raw):
		return s
	case raw[0] == '[' && name == "site_access_info" && mode == hearth.ModeSeed:
		s.Data = append(append([]byte(`{"logs":`), raw...), '}')
		s.Notes = []hearth.Note{{Field: name, Reason: hearth.NoteLogsList, Text: `a bare list; taken as {"logs": [...]}`}}
		return s
	}
	s.Err, s.Reason = name+" must be a non-empty JSON object", ReasonInvalid
	return s
}

// falsy reports whether a JSON value (already known to be valid) is false
// in Python: {}, [], "", 0, false.
func falsy(raw json.RawMessage) bool {
	switch raw[0] {
	case '{', '[':
		return len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
	case '"':
		return string(raw) == `""`
	case 'f':
		return string(raw) == "false"
	case 't', 'n':
		return false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return err == nil && f == 0
}
