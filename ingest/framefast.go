package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/guardianai/hearth/internal/jsonscan"
)

// decodeFrameFast is DecodeFrame for the frames phones send, without
// reflection: once json.Valid has checked the whole frame, one pass over
// the top-level object picks the four keys' values. ok is false for
// anything it does not handle exactly as encoding/json would (an escaped
// key or type, a repeated key, a key that matches one of ours only case-
// insensitively, a non-string type): DecodeFrame then takes its slow path,
// which also words every refusal. Data is a slice of b; ID is a copy,
// since it is echoed in a reply written after b is reused.
func decodeFrameFast(b []byte) (f Frame, ok bool) {
	if len(b) < 2 || b[0] != '{' || !json.Valid(b) {
		return Frame{}, false
	}
	var seen [4]bool
	ok = true
	jsonscan.Members(b, func(m jsonscan.Member) bool {
		if bytes.IndexByte(m.Key, '\\') >= 0 {
			ok = false
			return false
		}
		slot := frameKey(m.Key)
		switch {
		case slot == -2:
			ok = false
		case slot >= 0 && seen[slot]:
			ok = false
		case slot >= 0:
			seen[slot] = true
			ok = f.set(slot, m.Value)
		}
		return ok
	})
	return f, ok && f.Type != ""
}

// frameKey is the slot of one of DecodeFrame's keys; -1 for another key,
// -2 for one encoding/json would match to ours ignoring case.
func frameKey(k []byte) int {
	for i, name := range [...]string{"type", "id", "child_hash", "data"} {
		if string(k) == name {
			return i
		}
		if strings.EqualFold(string(k), name) {
			return -2
		}
	}
	return -1
}

func (f *Frame) set(slot int, v []byte) bool {
	switch slot {
	case 0:
		s, ok := plainString(v)
		if !ok {
			return false
		}
		f.Type = internType(s)
	case 1:
		f.ID = bytes.Clone(v)
	case 2:
		if string(v) == "null" {
			return true
		}
		s, ok := plainString(v)
		if !ok {
			return false
		}
		f.ChildHash = string(s)
	case 3:
		if string(v) != "null" {
			f.Data = v
		}
	}
	return true
}

// plainString is the content of a JSON string without escapes and in
// valid UTF-8 (encoding/json replaces invalid bytes).
func plainString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
		return nil, false
	}
	return v[1 : len(v)-1], true
}

// internType spares an allocation for the frame types phones send.
func internType(s []byte) string {
	for _, t := range [...]string{"location", "screen_time", "site_access", "ping", "auth"} {
		if string(s) == t {
			return t
		}
	}
	return string(s)
}
