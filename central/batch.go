package central

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	// Unreadable holds, by index in Messages, the messages that are
	// malformed but whose seq could be read: each is rejected on its own
	// with the reason, and the rest of the batch is applied.
	Unreadable map[int]error
}

// BatchLimits bound what ReadBatch accepts and what it may hold.
type BatchLimits struct {
	MaxDecompressed int64 // bytes after decompression
	MaxMessages     int
	// MaxSent bounds the bytes read from the body as sent (compressed);
	// 0: no bound beyond MaxDecompressed.
	MaxSent int64
	// SizeHint is the body's size as sent when known (its
	// Content-Length), to size the first buffer; 0 when unknown.
	SizeHint int64
	// Take, when set, is asked for the bytes of each buffer allocated
	// for the decompressed body before it is allocated; an error refuses
	// the batch with 503 (central's body budget is spent).
	Take func(n int64) error
}

// BatchError is a refusal of a whole batch: Status is the HTTP status
// (400, 408, 413, 415 or 503) and Reason the text for the edge.
type BatchError struct {
	Status int
	Reason string
}

func (e *BatchError) Error() string { return e.Reason }

func badBatch(format string, args ...any) *BatchError {
	return &BatchError{Status: 400, Reason: fmt.Sprintf(format, args...)}
}

// DecodeBatch decodes a batch body held in memory; see ReadBatch.
func DecodeBatch(body []byte, encoding string, lim BatchLimits) (Batch, error) {
	lim.SizeHint = int64(len(body))
	return ReadBatch(bytes.NewReader(body), encoding, lim)
}

// ReadBatch reads a batch body sent with Content-Encoding encoding
// ("gzip", "identity" or "") from r and decodes it. Every refusal is a
// *BatchError: 413 when the batch is too large (the edge splits it), 415
// for an unknown encoding, 503 when lim.Take refuses memory, 408 when r
// times out, 400 for anything malformed. Gzip is inflated as it is read,
// through a limit: only the decompressed body is held, never more than
// MaxDecompressed bytes of it, so a small body that inflates to gigabytes
// costs no more than that.
func ReadBatch(r io.Reader, encoding string, lim BatchLimits) (Batch, error) {
	raw, err := readBatchBody(r, encoding, lim)
	if err != nil {
		return Batch{}, err
	}
	scanned, ok := hearth.ScanBatch(raw)
	sb := scannedBatch{ScannedBatch: scanned}
	if !ok {
		// Not in the form edges write: the general decoder gives the answer.
		if sb, err = decodeBatchBody(raw, lim.MaxMessages); err != nil {
			return Batch{}, err
		}
	}
	b := Batch{EdgeID: sb.EdgeID, Messages: sb.Messages, Unreadable: sb.unreadable}
	if b.SentAt, err = time.Parse(time.RFC3339Nano, sb.SentAt); err != nil {
		return Batch{}, badBatch("sent_at: %q is not an RFC 3339 time", clip(sb.SentAt))
	}
	if n := len(b.Messages); n > lim.MaxMessages {
		return Batch{}, tooMany(n, lim.MaxMessages)
	}
	return b, nil
}

func tooMany(n, max int) *BatchError {
	return &BatchError{Status: 413, Reason: fmt.Sprintf("batch has %d messages; at most %d allowed: split it", n, max)}
}

// scannedBatch is a batch body decoded, with the messages that are
// malformed but carry a readable seq.
type scannedBatch struct {
	hearth.ScannedBatch
	unreadable map[int]error
}

// decodeBatchBody decodes a batch body with encoding/json, for any body
// hearth.ScanBatch does not take. The messages are decoded only when
// there are not too many of them. A malformed message whose seq can be
// read is kept for a rejection of its own (docs/edge-api.md: one bad
// message never refuses its batch); one without a readable seq makes the
// envelope unreadable: central could not say which message it answers.
func decodeBatchBody(raw []byte, maxMessages int) (scannedBatch, error) {
	var w struct {
		EdgeID   string             `json:"edge_id"`
		SentAt   *string            `json:"sent_at"`
		Messages *[]json.RawMessage `json:"messages"`
	}
	if err := strictObject(raw, &w); err != nil {
		return scannedBatch{}, badBatch("body: %v", err)
	}
	b := scannedBatch{ScannedBatch: hearth.ScannedBatch{EdgeID: w.EdgeID}}
	if w.SentAt == nil {
		return b, badBatch(`sent_at is required (the edge's clock when sending, RFC 3339)`)
	}
	if _, err := time.Parse(time.RFC3339Nano, *w.SentAt); err != nil {
		return b, badBatch("sent_at: %q is not an RFC 3339 time", clip(*w.SentAt))
	}
	b.SentAt = *w.SentAt
	if w.Messages == nil {
		return b, badBatch("messages is required (a list)")
	}
	if n := len(*w.Messages); n > maxMessages {
		return b, tooMany(n, maxMessages)
	}
	b.Messages = make([]hearth.BatchMessage, len(*w.Messages))
	for i, m := range *w.Messages {
		err := decodeMessage(m, &b.Messages[i])
		if err == nil {
			continue
		}
		seq, ok := readSeq(m)
		if !ok {
			return b, badBatch("messages[%d]: %v", i, err)
		}
		b.Messages[i] = hearth.BatchMessage{Seq: seq}
		if b.unreadable == nil {
			b.unreadable = make(map[int]error)
		}
		b.unreadable[i] = &hearth.InvalidError{Code: hearth.CodeInvalid, Reason: "message is malformed: " + err.Error()}
	}
	return b, nil
}

// readBatchBody reads the decompressed body within lim.
func readBatchBody(r io.Reader, encoding string, lim BatchLimits) ([]byte, error) {
	src := &sentReader{r: r, left: lim.MaxSent, max: lim.MaxSent}
	body, hint := io.Reader(src), lim.SizeHint
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, src.refusal(err, "body is not gzip")
		}
		body, hint = zr, 4*hint // JSON inflates several times
	default:
		return nil, &BatchError{Status: 415, Reason: fmt.Sprintf("Content-Encoding %q is not supported: send gzip or identity", clip(encoding))}
	}
	raw, err := readLimited(body, lim.MaxDecompressed, hint, lim.Take)
	switch {
	case err == nil:
		return raw, nil
	case errors.Is(err, errBodyTooLarge):
		return nil, tooLarge(lim.MaxDecompressed)
	case errors.Is(err, errBudgetSpent):
		return nil, &BatchError{Status: 503, Reason: "central is busy (request bodies in memory are at their limit); retry later"}
	}
	return nil, src.refusal(err, "body is not valid gzip")
}

func tooLarge(max int64) *BatchError {
	return &BatchError{Status: 413, Reason: fmt.Sprintf("batch is larger than %d bytes decompressed: split it", max)}
}

// sentReader reads the body as sent, refusing more than max bytes (when
// max > 0), and remembers the error of the connection so that it is not
// taken for bad gzip.
type sentReader struct {
	r         io.Reader
	left, max int64
	err       error
}

var errSentTooLarge = errors.New("body too large as sent")

func (s *sentReader) Read(p []byte) (int, error) {
	if s.max > 0 {
		if s.left <= 0 {
			// One byte past the limit tells a body of exactly max bytes from a longer one.
			var probe [1]byte
			if n, err := s.r.Read(probe[:]); n > 0 {
				s.err = errSentTooLarge
				return 0, s.err
			} else if err != nil {
				return 0, s.keep(err)
			}
			return 0, nil
		}
		p = p[:min(int64(len(p)), s.left)]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	return n, s.keep(err)
}

func (s *sentReader) keep(err error) error {
	if err != nil && err != io.EOF {
		s.err = err
	}
	return err
}

// refusal classifies a failure to read the body: the body as sent was
// too large (413), the connection timed out (408) or failed (400), or,
// when the connection was fine, the data was not what it claimed (400
// with what).
func (s *sentReader) refusal(err error, what string) *BatchError {
	var ne net.Error
	switch {
	case errors.Is(s.err, errSentTooLarge):
		return &BatchError{Status: 413, Reason: fmt.Sprintf("batch body larger than %d bytes as sent: split it", s.max)}
	case errors.As(s.err, &ne) && ne.Timeout():
		return &BatchError{Status: 408, Reason: "batch body not received in time"}
	case s.err != nil:
		return badBatch("batch body could not be read: %v", s.err)
	}
	return badBatch("%s: %v", what, err)
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

// readSeq reads the seq of a message that did not decode: a JSON object
// whose seq is a non-negative integer, whatever its other members.
func readSeq(raw json.RawMessage) (uint64, bool) {
	var w struct {
		Seq json.RawMessage `json:"seq"`
	}
	if json.Unmarshal(raw, &w) != nil || w.Seq == nil {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(w.Seq), 10, 64)
	return seq, err == nil
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
