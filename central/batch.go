package central

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/guardianai/hearth"
)

// Batch is one edge batch (docs/edge-api.md) as decoded from its body.
type Batch struct {
	EdgeID   string
	SentAt   time.Time
	Messages []hearth.BatchMessage
}

// BatchLimits bound what DecodeBatch accepts.
type BatchLimits struct {
	MaxDecompressed int64 // bytes after decompression
	MaxMessages     int
}

// BatchError is a refusal of a whole batch: Status is the HTTP status (400,
// 413 or 415) and Reason the text for the edge.
type BatchError struct {
	Status int
	Reason string
}

func (e *BatchError) Error() string { return e.Reason }

func badBatch(format string, args ...any) *BatchError {
	return &BatchError{Status: 400, Reason: fmt.Sprintf(format, args...)}
}

// DecodeBatch decodes a batch body sent with Content-Encoding encoding
// ("gzip", "identity" or ""). Every refusal is a *BatchError: 413 when the
// batch is too large (the edge splits it), 415 for an unknown encoding, 400
// for anything malformed. Gzip is read through a limit, so a small body that
// inflates to gigabytes costs no more than MaxDecompressed bytes.
func DecodeBatch(body []byte, encoding string, lim BatchLimits) (Batch, error) {
	raw, err := decompress(body, encoding, lim.MaxDecompressed)
	if err != nil {
		return Batch{}, err
	}
	var w struct {
		EdgeID   string             `json:"edge_id"`
		SentAt   *string            `json:"sent_at"`
		Messages *[]json.RawMessage `json:"messages"`
	}
	if err := strictObject(raw, &w); err != nil {
		return Batch{}, badBatch("body: %v", err)
	}
	b := Batch{EdgeID: w.EdgeID}
	if w.SentAt == nil {
		return Batch{}, badBatch(`sent_at is required (the edge's clock when sending, RFC 3339)`)
	}
	if b.SentAt, err = time.Parse(time.RFC3339Nano, *w.SentAt); err != nil {
		return Batch{}, badBatch("sent_at: %q is not an RFC 3339 time", clip(*w.SentAt))
	}
	if w.Messages == nil {
		return Batch{}, badBatch("messages is required (a list)")
	}
	if n := len(*w.Messages); n > lim.MaxMessages {
		return Batch{}, &BatchError{Status: 413, Reason: fmt.Sprintf("batch has %d messages; at most %d allowed: split it", n, lim.MaxMessages)}
	}
	b.Messages = make([]hearth.BatchMessage, len(*w.Messages))
	for i, m := range *w.Messages {
		if err := decodeMessage(m, &b.Messages[i]); err != nil {
			return Batch{}, badBatch("messages[%d]: %v", i, err)
		}
	}
	return b, nil
}

func decompress(body []byte, encoding string, max int64) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		if int64(len(body)) > max {
			return nil, tooLarge(max)
		}
		return body, nil
	case "gzip", "x-gzip":
	default:
		return nil, &BatchError{Status: 415, Reason: fmt.Sprintf("Content-Encoding %q is not supported: send gzip or identity", clip(encoding))}
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, badBatch("body is not gzip: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		return nil, badBatch("body is not valid gzip: %v", err)
	}
	if int64(len(out)) > max {
		return nil, tooLarge(max)
	}
	return out, nil
}

func tooLarge(max int64) *BatchError {
	return &BatchError{Status: 413, Reason: fmt.Sprintf("batch is larger than %d bytes decompressed: split it", max)}
}

// decodeMessage decodes one message; seq is required, everything else is
// checked later per message.
func decodeMessage(raw json.RawMessage, m *hearth.BatchMessage) error {
	var w struct {
		Seq        *json.Number    `json:"seq"`
		ChildHash  string          `json:"child_hash"`
		Type       string          `json:"type"`
		ReceivedAt string          `json:"received_at"`
		Via        string          `json:"via"`
		Data       json.RawMessage `json:"data"`
		Synced     bool            `json:"synced"`
	}
	if err := strictObject(raw, &w); err != nil {
		return err
	}
	if w.Seq == nil {
		return errors.New("seq is required")
	}
	seq, err := strconv.ParseUint(w.Seq.String(), 10, 64)
	if err != nil {
		return fmt.Errorf("seq %s is not a non-negative integer", clip(w.Seq.String()))
	}
	*m = hearth.BatchMessage{Seq: seq, ChildHash: w.ChildHash, Type: w.Type, ReceivedAt: w.ReceivedAt, Via: w.Via, Data: w.Data, Synced: w.Synced}
	if bytes.Equal(bytes.TrimSpace(m.Data), []byte("null")) {
		m.Data = nil
	}
	return nil
}

// strictObject decodes one JSON object into dst and nothing after it.
func strictObject(data []byte, dst any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return errors.New("must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s must not be a JSON %s", te.Field, te.Value)
		}
		return errors.New("is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("has data after the JSON object")
	}
	return nil
}

// clip shortens client-supplied text quoted in a reason.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
