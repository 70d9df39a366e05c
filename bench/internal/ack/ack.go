// Package ack speaks just enough of the device protocol for the reference
// servers of `make bench` (bench/bare, bench/naive): the greeting, and an
// ack built from a data frame's "type" and "id" found by scanning the
// bytes, without JSON decoding.
package ack

import "bytes"

// Hello is the connection_established frame for child.
func Hello(child string) []byte {
	return []byte(`{"type":"connection_established","child_hash":"` + child + `","message":"connected"}`)
}

// Append appends the ack of frame to b.
func Append(b, frame []byte) []byte {
	b = append(b, `{"type":"ack","message_type":"`...)
	b = append(b, field(frame, `"type":"`, '"')...)
	b = append(b, `","status":"success","result":{"stored":true}`...)
	if id := field(frame, `"id":`, ','); id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	return append(b, '}')
}

// field returns the bytes after key up to end (exclusive); nil if absent.
func field(p []byte, key string, end byte) []byte {
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return nil
	}
	rest := p[i+len(key):]
	j := bytes.IndexByte(rest, end)
	if j < 0 {
		return nil
	}
	return rest[:j]
}
