package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
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
	i := skipSpace(b, 1)
	for i < len(b) && b[i] != '}' {
		kEnd := bytes.IndexByte(b[i+1:], '"') + i + 1
		key := b[i+1 : kEnd]
		if bytes.IndexByte(key, '\\') >= 0 {
			return Frame{}, false
		}
		vStart := skipSpace(b, skipSpace(b, kEnd+1)+1) // past the colon
		vEnd := skipValue(b, vStart)
		val := b[vStart:vEnd]
		slot := frameKey(key)
		if slot < 0 {
			if slot == -2 {
				return Frame{}, false
			}
		} else {
			if seen[slot] {
				return Frame{}, false
			}
			seen[slot] = true
			if !f.set(slot, val) {
				return Frame{}, false
			}
		}
		i = skipSpace(b, vEnd)
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return f, f.Type != ""
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

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at i; b is valid JSON.
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of a scalar before the closing brace
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// skipString returns the index of the closing quote of the string at i.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return i
}
