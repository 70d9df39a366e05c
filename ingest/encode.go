package ingest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/guardianai/hearth"
)

// Replies are small and hot: they are built by appending, with the child
// hash and texts escaped by encoding/json.

// encodeAck is the seed's ack: "result" holds "stored":true and the
// seed's keys for the kind, plus the notes of what was skipped or
// normalised (keys only ever added, never changed).
func encodeAck(c *hearth.Checked, id []byte) []byte {
	b := make([]byte, 0, 128+len(id))
	b = append(b, `{"type":"ack","message_type":"`...)
	b = append(b, c.Kind...)
	b = append(b, `","status":"success","result":{"stored":true`...)
	b = appendResult(b, c)
	b = append(b, '}')
	return closeWithID(b, id)
}

// appendResult appends the seed's result keys and the notes, each
// preceded by a comma.
func appendResult(b []byte, c *hearth.Checked) []byte {
	b = c.Payload.AppendAckResult(b)
	b = appendNotes(b, "ignored", c.Notes, true)
	return appendNotes(b, "normalised", c.Notes, false)
}

// appendNotes appends ,"key":["field: text",…] for the notes whose
// Ignored equals ignored; nothing when there are none.
func appendNotes(b []byte, key string, notes []hearth.Note, ignored bool) []byte {
	first := true
	for _, n := range notes {
		if n.Ignored != ignored {
			continue
		}
		if first {
			b = append(b, ',')
			b = appendString(b, key)
			b = append(b, ':', '[')
			first = false
		} else {
			b = append(b, ',')
		}
		b = appendString(b, n.String())
	}
	if !first {
		b = append(b, ']')
	}
	return b
}

// refusal is an error reply: the text for people, the metric reason (from
// which the machine-readable code follows) and, when the client should
// resend, how long to wait.
type refusal struct {
	msg        string
	reason     string
	retryAfter time.Duration
}

// encodeError is the seed's error frame plus "code" and, when the data
// must be kept and resent, "retry_after" in seconds.
func encodeError(id []byte, r refusal) []byte {
	b := make([]byte, 0, 80+len(r.msg)+len(id))
	b = append(b, `{"type":"error","message":`...)
	b = appendString(b, r.msg)
	b = appendCode(b, r)
	return closeWithID(b, id)
}

// appendCode appends ,"code":…[,"retry_after":…].
func appendCode(b []byte, r refusal) []byte {
	b = append(b, `,"code":"`...)
	b = append(b, codeFor(r.reason)...)
	b = append(b, '"')
	if r.retryAfter > 0 {
		b = append(b, `,"retry_after":`...)
		b = append(b, RetryAfter(r.retryAfter)...)
	}
	return b
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
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
