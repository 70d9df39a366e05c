package forwarder

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/outbox"
)

// timeMillis is sent_at's format: RFC 3339 in UTC with milliseconds.
const timeMillis = "2006-01-02T15:04:05.000Z07:00"

// refusal is a message to move to the dead letters, with the reason.
type refusal struct {
	seq    uint64
	reason string
}

// encodeBatch returns the JSON body of a batch of the oldest of recs whose
// encoding fits maxBytes (always at least one), the records it holds, and
// records that cannot be encoded at all (they are never sendable).
func encodeBatch(edgeID string, sentAt time.Time, recs []outbox.Record, maxBytes int64) (body []byte, sent []outbox.Record, bad []refusal) {
	var buf bytes.Buffer
	head, _ := json.Marshal(edgeID)
	fmt.Fprintf(&buf, `{"edge_id":%s,"sent_at":"%s","messages":[`, head, sentAt.UTC().Format(timeMillis))
	var msg bytes.Buffer
	for _, r := range recs {
		msg.Reset()
		if err := encodeMessage(&msg, r); err != nil {
			bad = append(bad, refusal{seq: r.Seq, reason: "cannot be encoded for central: " + err.Error()})
			continue
		}
		if len(sent) > 0 && int64(buf.Len()+msg.Len()+2) > maxBytes {
			break
		}
		if len(sent) > 0 {
			buf.WriteByte(',')
		}
		buf.Write(bytes.TrimSuffix(msg.Bytes(), []byte("\n")))
		sent = append(sent, r)
	}
	buf.WriteString("]}")
	return buf.Bytes(), sent, bad
}

func encodeMessage(w *bytes.Buffer, r outbox.Record) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(hearth.BatchMessage{
		Seq: r.Seq, ChildHash: r.Msg.ChildHash, Type: string(r.Msg.Kind),
		ReceivedAt: r.Msg.ReceivedAt.UTC().Format(time.RFC3339Nano), Via: r.Msg.Via, Data: r.Msg.Data,
		Synced: r.Msg.Synced,
	})
}

func gzipBytes(raw []byte) ([]byte, error) {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // a router's CPU is the scarce part
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
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
func matchResults(sent []outbox.Record, body []byte) (plan, error) {
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
		pending[s.Seq] = true
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
			p.rejected = append(p.rejected, refusal{seq: res.Seq, reason: "rejected by central: " + why})
		default:
			p.unexpected++
			continue
		}
		delete(pending, res.Seq)
	}
	for _, s := range sent {
		if pending[s.Seq] {
			p.missing = append(p.missing, s.Seq)
		}
	}
	return p, nil
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
