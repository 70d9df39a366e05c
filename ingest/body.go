package ingest

import (
	"bytes"
	"encoding/json"
)

// sectionNames maps the HTTP fallback's body fields to kinds, in the order
// of hearth.Kinds.
var sectionNames = [...]string{"screen_time_info", "location_info", "site_access_info"}

// Body is a decoded HTTP fallback request.
type Body struct {
	ChildHash string
	Sections  [3]Section // indexed like hearth.Kinds
}

// Section is one *_info object of the body.
type Section struct {
	Present bool
	Data    json.RawMessage // the object; its own child_hash is left inside and ignored by validation
	Err     string          // why the section cannot be used, when it is malformed
	Reason  string          // metric label for Err
}

// BodyError is a body that cannot be read at all (HTTP 400).
type BodyError struct{ Msg string }

func (e *BodyError) Error() string { return e.Msg }

// DecodeBody decodes an HTTP fallback body. A body that is not a JSON object
// or has no usable child_hash is a *BodyError; a malformed or mismatched
// section is reported in its Section and leaves the others usable.
func DecodeBody(b []byte) (Body, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		what := "empty"
		if len(b) > 0 {
			what = jsonKind(b[0])
		}
		return Body{}, &BodyError{"body must be a JSON object with child_hash, not " + what}
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
		body.Sections[i] = decodeSection(name, raw[name], body.ChildHash)
	}
	return body, nil
}

func decodeSection(name string, raw json.RawMessage, child string) Section {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Section{}
	}
	s := Section{Present: true, Data: raw}
	if raw[0] != '{' {
		s.Err, s.Reason = name+" must be a JSON object", ReasonInvalid
		return s
	}
	var inner struct {
		ChildHash json.RawMessage `json:"child_hash"`
	}
	if err := json.Unmarshal(raw, &inner); err != nil {
		s.Err, s.Reason = name+" is not valid JSON", ReasonInvalid
		return s
	}
	if len(inner.ChildHash) > 0 && string(inner.ChildHash) != "null" {
		var h string
		if json.Unmarshal(inner.ChildHash, &h) != nil || h != child {
			s.Err, s.Reason = "child_hash in "+name+" does not match the request's child_hash", ReasonChildMismatch
		}
	}
	return s
}
