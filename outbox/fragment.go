package outbox

import (
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/guardianai/hearth"
)

// A message of an edge batch (hearth.BatchMessage, docs/edge-api.md) is
//
//	{"seq":N,"child_hash":…,"type":…,"received_at":…,"via":…,"data":…[,"synced":true]}
//
// byte for byte as encoding/json writes it with HTML escaping off. A record
// of version 3 stores everything after `{"seq":N,` (the fragment), since the
// sequence number is only known inside the commit; the forwarder builds a
// batch by writing `{"seq":N,` and the stored fragment, with no decoding.

// appendFragment appends m's fragment. m.Data is compact JSON (hearth.Check
// writes it so); nil Data is written as null, as encoding/json does.
func appendFragment(dst []byte, m *hearth.Message) []byte {
	dst = append(dst, `"child_hash":`...)
	dst = appendQuoted(dst, m.ChildHash)
	dst = append(dst, `,"type":`...)
	dst = appendQuoted(dst, string(m.Kind))
	dst = append(dst, `,"received_at":"`...)
	dst = m.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","via":`...)
	dst = appendQuoted(dst, m.Via)
	dst = append(dst, `,"data":`...)
	if len(m.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, m.Data...)
	}
	if m.Synced {
		dst = append(dst, `,"synced":true`...)
	}
	return append(dst, '}')
}

// appendSeq appends the start of a batch message, `{"seq":N,`.
func appendSeq(dst []byte, seq uint64) []byte {
	dst = append(dst, `{"seq":`...)
	dst = appendUint(dst, seq)
	return append(dst, ',')
}

func appendUint(dst []byte, n uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string exactly as encoding/json does with
// SetEscapeHTML(false): control characters escaped (\b \f \n \r \t by name),
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// fragmentMessage is the fragment's fields, for reading a record back into
// a hearth.Message (ReadOldest, dead letters): not the forwarding path.
type fragmentMessage struct {
	ChildHash  string          `json:"child_hash"`
	Type       string          `json:"type"`
	ReceivedAt time.Time       `json:"received_at"`
	Via        string          `json:"via"`
	Data       json.RawMessage `json:"data"`
	Synced     bool            `json:"synced"`
}

// decodeFragment reads a fragment back into a Message.
func decodeFragment(frag []byte) (hearth.Message, error) {
	obj := make([]byte, 0, len(frag)+1)
	obj = append(append(obj, '{'), frag...)
	var f fragmentMessage
	if err := json.Unmarshal(obj, &f); err != nil {
		return hearth.Message{}, err
	}
	if string(f.Data) == "null" {
		f.Data = nil
	}
	return hearth.Message{
		ChildHash: f.ChildHash, Kind: internKind([]byte(f.Type)), ReceivedAt: f.ReceivedAt.UTC(),
		Via: internVia([]byte(f.Via)), Data: f.Data, Synced: f.Synced,
	}, nil
}
