package ingest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/guardianai/hearth"
)

// Replies are small and hot: they are built by appending, with the child
// hash and texts escaped by encoding/json.

func encodeAck(kind hearth.Kind, id []byte) []byte {
	b := make([]byte, 0, 96+len(id))
	b = append(b, `{"type":"ack","message_type":"`...)
	b = append(b, kind...)
	b = append(b, `","status":"success","result":{"stored":true}`...)
	return closeWithID(b, id)
}

func encodeError(id []byte, msg string) []byte {
	b := make([]byte, 0, 48+len(msg)+len(id))
	b = append(b, `{"type":"error","message":`...)
	b = appendString(b, msg)
	return closeWithID(b, id)
}

func encodePong(id []byte) []byte {
	return closeWithID([]byte(`{"type":"pong"`), id)
}

func encodeEstablished(child, label string) []byte {
	b := []byte(`{"type":"connection_established","child_hash":`)
	b = appendString(b, child)
	b = append(b, `,"message":`...)
	b = appendString(b, "Connected to "+label+"; send screen_time, location and site_access messages")
	return append(b, '}')
}

func encodeAuthRequired() []byte {
	return []byte(`{"type":"auth_required","message":"Send {\"type\":\"auth\",\"child_hash\":\"…\"} to authenticate"}`)
}

func encodeAuthSuccess(id []byte, child string) []byte {
	b := []byte(`{"type":"auth_success","child_hash":`)
	b = appendString(b, child)
	b = append(b, `,"message":"Authenticated"`...)
	return closeWithID(b, id)
}

// closeWithID appends the optional "id" and the closing brace.
func closeWithID(b, id []byte) []byte {
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	return append(b, '}')
}

func appendString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil {
		panic("BUG: marshal string: " + err.Error())
	}
	return append(b, q...)
}

// RetryAfter formats a Retry-After header value: whole seconds, at least 1
// (0 would invite an immediate retry storm).
func RetryAfter(d time.Duration) string {
	s := int(d.Seconds())
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
