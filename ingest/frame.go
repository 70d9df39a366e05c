package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Frame is one decoded text frame from a phone.
type Frame struct {
	Type      string
	ID        json.RawMessage // the optional "id", echoed verbatim in the reply
	ChildHash string          // "child_hash" of an auth frame
	Data      json.RawMessage // "data" of a data frame; nil when absent or null
}

// FrameError is a frame that could not be decoded; Reason is the metric label.
type FrameError struct {
	Reason string
	Msg    string
}

func (e *FrameError) Error() string { return e.Msg }

func frameError(msg string) error {
	return &FrameError{Reason: ReasonMalformed, Msg: msg}
}

// DecodeFrame decodes a text frame. It never panics; any input that is not
// a JSON object with a string "type" is a *FrameError with a clear message.
func DecodeFrame(b []byte) (Frame, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Frame{}, frameError("empty frame: send a JSON object such as {\"type\":\"location\",\"data\":{…}}")
	}
	if b[0] != '{' {
		return Frame{}, frameError("frame must be a JSON object, not " + jsonKind(b[0]))
	}
	if f, ok := decodeFrameFast(b); ok {
		return f, nil
	}
	var raw struct {
		Type      json.RawMessage `json:"type"`
		ID        json.RawMessage `json:"id"`
		ChildHash json.RawMessage `json:"child_hash"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Frame{}, frameError("frame is not valid JSON: " + jsonReason(err))
	}
	var f Frame
	if len(raw.Type) == 0 || string(raw.Type) == "null" {
		return f, frameError(`frame has no "type"`)
	}
	if err := json.Unmarshal(raw.Type, &f.Type); err != nil {
		return f, frameError(`"type" must be a string`)
	}
	if f.Type == "" {
		return Frame{}, frameError(`"type" must not be empty`)
	}
	if len(raw.ChildHash) > 0 && string(raw.ChildHash) != "null" {
		if err := json.Unmarshal(raw.ChildHash, &f.ChildHash); err != nil {
			return f, frameError(`"child_hash" must be a string`)
		}
	}
	if len(raw.ID) > 0 {
		f.ID = raw.ID
	}
	if len(raw.Data) > 0 && string(raw.Data) != "null" {
		f.Data = raw.Data
	}
	return f, nil
}

func jsonKind(c byte) string {
	switch {
	case c == '[':
		return "a list"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return "something else (not JSON)"
}

// jsonReason turns a decoder error into a short, client-safe phrase.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%q must not be a JSON %s", te.Field, te.Value)
	}
	return "unexpected end of input"
}
