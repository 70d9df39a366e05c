package forwarder

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/outbox"
)

// timeMillis is sent_at's format: RFC 3339 in UTC with milliseconds.
const timeMillis = "2006-01-02T15:04:05.000Z07:00"

// refusal is a message to move to the dead letters, with the reason.
type refusal struct {
	seq    uint64
	code   string // outbox.DeadCode of reason
	reason string
}

// appendBatchHead appends the start of a batch's JSON, up to the opening
// of its messages list; the outbox appends the messages (each stored as
// the JSON it has here), and closeBatch the end.
func appendBatchHead(dst []byte, edgeID string, sentAt time.Time) []byte {
	head, _ := json.Marshal(edgeID)
	dst = append(dst, `{"edge_id":`...)
	dst = append(dst, head...)
	dst = append(dst, `,"sent_at":"`...)
	dst = sentAt.UTC().AppendFormat(dst, timeMillis)
	return append(dst, `","messages":[`...)
}

func closeBatch(dst []byte) []byte { return append(dst, "]}"...) }

// gzipWriters are reused: a gzip.Writer holds ~800 KB of tables, too much
// to build for each batch on a router.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a router's CPU is the scarce part
	return zw
}}

// gzipInto compresses raw into out (reset first).
func gzipInto(out *bytes.Buffer, raw []byte) error {
	out.Reset()
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(out)
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	return zw.Close()
}

// plan is what to do with each message of a batch after central's answer.
type plan struct {
	ok         []uint64  // stored: delete
	rejected   []refusal // refused for good: dead letters
	missing    []uint64  // no usable result: keep and send again
	unexpected int       // results for seqs not sent, duplicates, unknown statuses
}

// matchResults pairs central's 200 answer with the messages sent. It is
// strict in what it acts on: only a result for a seq that was sent, with
// status "ok" or "rejected", deletes or dead-letters a message.
func matchResults(sent []uint64, body []byte) (plan, error) {
	var r struct {
		Results *[]hearth.BatchResult `json:"results"` // nil: the field is missing
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return plan{}, fmt.Errorf("not JSON results: %w", err)
	}
	if r.Results == nil {
		return plan{}, errors.New(`no "results" list`)
	}
	pending := make(map[uint64]bool, len(sent))
	for _, s := range sent {
		pending[s] = true
	}
	var p plan
	for _, res := range *r.Results {
		if !pending[res.Seq] {
			p.unexpected++
			continue
		}
		switch res.Status {
		case hearth.BatchStatusOK:
			p.ok = append(p.ok, res.Seq)
		case hearth.BatchStatusRejected:
			why := res.Error
			if why == "" {
				why = "no reason given"
			}
			code := res.Code
			if !validCode(code) {
				code = "" // an older central sends none; the text is read instead
			}
			reason := outbox.DeadReason(code, why)
			p.rejected = append(p.rejected, refusal{seq: res.Seq, code: outbox.DeadCode(reason), reason: reason})
		default:
			p.unexpected++
			continue
		}
		delete(pending, res.Seq)
	}
	for _, s := range sent {
		if pending[s] {
			p.missing = append(p.missing, s)
		}
	}
	return p, nil
}

// validCode reports whether central's rejection code can be a label: a
// short word of lower-case letters and underscores.
func validCode(c string) bool {
	if c == "" || len(c) > 32 {
		return false
	}
	for _, r := range c {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// reason returns the "error" of a JSON error body, or the body's start.
func reason(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := string(bytes.TrimSpace(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		s = "(no body)"
	}
	return s
}
