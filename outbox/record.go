package outbox

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/guardianai/hearth"
)

// recordV3 is the first byte of every pending record this build stores.
// Layout:
//
//	version(1) | flags(1) | varint unix seconds, uvarint nanoseconds (received_at) |
//	uvarint quota size | fragment (fragment.go) | crc32c(4, big-endian)
//
// The fragment is the message as it travels in a batch, so forwarding it
// decodes nothing; received_at, the flags and the size are kept apart for
// the queue's head and its counters.
//
// recordV2 is what format 2 stored, and is still read. Layout:
//
//	version(1) | flags(1) | uvarint len, child_hash | uvarint len, kind |
//	uvarint len, via | varint unix seconds, uvarint nanoseconds (received_at) |
//	uvarint len, data | crc32c(4, big-endian) over everything before it
//
// The CRC catches bit rot inside values, which bbolt itself does not checksum.
// recordV1 is the same without the flags byte: files of format 1 hold it,
// and it is still read (as not synced), so a migration rewrites no record.
const (
	recordV1 = 1
	recordV2 = 2
	recordV3 = 3
)

// Flags of a version 2 record. Any other bit makes the record undecodable:
// a bit this build does not know could change what the record means.
const (
	flagSynced = 1 << 0 // received_at is on central's clock (hearth.Message.Synced)
	knownFlags = flagSynced
)

// deadV1 is the first byte of a stored dead letter. Layout:
//
//	version(1) | varint unix seconds, uvarint nanoseconds (moved at) |
//	uvarint len, reason | the pending record exactly as it was stored
const deadV1 = 1

// maxRecordHeader bounds the bytes a record adds to its fields: version,
// flags, four length varints, two time varints and the CRC.
const maxRecordHeader = 2 + 4*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64 + 4

// sizeOverhead is the constant part of hearth.Message.Size.
const sizeOverhead = 64

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord marks a stored value that cannot be decoded.
var errBadRecord = errors.New("undecodable record")

// appendRecord appends the stored form of m to dst (always version 3).
func appendRecord(dst []byte, m *hearth.Message) []byte {
	start := len(dst)
	dst = append(dst, recordV3, flagsOf(m))
	dst = appendTime(dst, m.ReceivedAt)
	dst = binary.AppendUvarint(dst, uint64(m.Size()))
	dst = appendFragment(dst, m)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func flagsOf(m *hearth.Message) byte {
	var flags byte
	if m.Synced {
		flags |= flagSynced
	}
	return flags
}

// appendRecordV2 appends the stored form of format 2, for tests of the
// migration.
func appendRecordV2(dst []byte, m *hearth.Message) []byte {
	start := len(dst)
	dst = append(dst, recordV2, flagsOf(m))
	dst = appendString(dst, m.ChildHash)
	dst = appendString(dst, string(m.Kind))
	dst = appendString(dst, m.Via)
	dst = appendTime(dst, m.ReceivedAt)
	dst = binary.AppendUvarint(dst, uint64(len(m.Data)))
	dst = append(dst, m.Data...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// recordView holds the fields of a stored record as slices of the stored
// value: valid only as long as the value is.
type recordView struct {
	version                    byte
	childHash, kind, via, data []byte // versions 1 and 2
	frag                       []byte // version 3
	storedSize                 int64  // version 3
	receivedAt                 time.Time
	synced                     bool
}

// size is hearth.Message.Size of the record, the unit of the byte quota.
func (r *recordView) size() int64 {
	if r.version == recordV3 {
		return r.storedSize
	}
	return int64(len(r.childHash) + len(r.kind) + len(r.via) + len(r.data) + sizeOverhead)
}

// parseRecord checks and splits a stored record (version 1, 2 or 3)
// without copying it.
func parseRecord(v []byte) (recordView, error) {
	var r recordView
	if len(v) < 1+4 {
		return r, fmt.Errorf("%w: %d bytes", errBadRecord, len(v))
	}
	if v[0] != recordV1 && v[0] != recordV2 && v[0] != recordV3 {
		return r, fmt.Errorf("%w: unknown record version %d", errBadRecord, v[0])
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return r, fmt.Errorf("%w: checksum mismatch", errBadRecord)
	}
	r.version = v[0]
	fields := body[1:]
	if v[0] == recordV3 {
		return parseV3(r, fields)
	}
	if v[0] == recordV2 {
		if len(fields) == 0 || fields[0]&^knownFlags != 0 {
			return r, fmt.Errorf("%w: missing or unknown record flags", errBadRecord)
		}
		r.synced = fields[0]&flagSynced != 0
		fields = fields[1:]
	}
	p := parser{b: fields}
	r.childHash = p.bytes()
	r.kind = p.bytes()
	r.via = p.bytes()
	r.receivedAt = p.time()
	r.data = p.bytes()
	if p.err != nil || len(p.b) != 0 {
		return recordView{}, fmt.Errorf("%w: malformed fields", errBadRecord)
	}
	return r, nil
}

func parseV3(r recordView, fields []byte) (recordView, error) {
	if len(fields) == 0 || fields[0]&^knownFlags != 0 {
		return recordView{}, fmt.Errorf("%w: missing or unknown record flags", errBadRecord)
	}
	r.synced = fields[0]&flagSynced != 0
	p := parser{b: fields[1:]}
	r.receivedAt = p.time()
	r.storedSize = int64(p.uvarint())
	if p.err != nil || len(p.b) < 2 || p.b[len(p.b)-1] != '}' || r.storedSize < sizeOverhead {
		return recordView{}, fmt.Errorf("%w: malformed fields", errBadRecord)
	}
	r.frag = p.b
	return r, nil
}

// appendFrag appends the batch fragment of a parsed record: the stored one
// for version 3, an encoding of the fields for older records (whose data
// is compacted as encoding/json would, which also checks it is JSON).
func (r *recordView) appendFrag(dst []byte) ([]byte, error) {
	if r.version == recordV3 {
		return append(dst, r.frag...), nil
	}
	var data bytes.Buffer
	if err := json.Compact(&data, r.data); err != nil {
		return dst, fmt.Errorf("cannot be encoded for central: data: %w", err)
	}
	m := hearth.Message{ChildHash: string(r.childHash), Kind: hearth.Kind(r.kind), ReceivedAt: r.receivedAt,
		Via: string(r.via), Data: data.Bytes(), Synced: r.synced}
	return appendFragment(dst, &m), nil
}

// decodeRecord parses a stored record into a Message that owns its memory.
func decodeRecord(v []byte) (hearth.Message, error) {
	r, err := parseRecord(v)
	if err != nil {
		return hearth.Message{}, err
	}
	if r.version == recordV3 {
		m, err := decodeFragment(r.frag)
		if err != nil {
			return hearth.Message{}, fmt.Errorf("%w: fragment: %w", errBadRecord, err)
		}
		return m, nil
	}
	return hearth.Message{
		ChildHash:  string(r.childHash),
		Kind:       internKind(r.kind),
		ReceivedAt: r.receivedAt,
		Via:        internVia(r.via),
		Data:       append([]byte(nil), r.data...),
		Synced:     r.synced,
	}, nil
}

// recordSize is the quota size of a stored record. For a record that does
// not parse it estimates from the stored length, so that removing it still
// frees roughly what adding it took.
func recordSize(v []byte) int64 {
	if r, err := parseRecord(v); err == nil {
		return r.size()
	}
	return max(int64(len(v))-maxRecordHeader, 0) + sizeOverhead
}

// internKind avoids an allocation for the known kinds.
func internKind(b []byte) hearth.Kind {
	for _, k := range hearth.Kinds {
		if string(k) == string(b) {
			return k
		}
	}
	return hearth.Kind(b)
}

func internVia(b []byte) string {
	switch string(b) {
	case hearth.ViaWS:
		return hearth.ViaWS
	case hearth.ViaHTTP:
		return hearth.ViaHTTP
	}
	return string(b)
}

// appendDead appends the stored form of a dead letter holding record.
func appendDead(dst []byte, at time.Time, reason string, record []byte) []byte {
	dst = append(dst, deadV1)
	dst = appendTime(dst, at)
	dst = appendString(dst, reason)
	return append(dst, record...)
}

// decodeDead parses a stored dead letter. A record inside it that does not
// decode is returned in Raw, with the reason extended.
func decodeDead(seq uint64, v []byte) (DeadLetter, error) {
	if len(v) == 0 || v[0] != deadV1 {
		return DeadLetter{}, fmt.Errorf("%w: bad dead letter header", errBadRecord)
	}
	p := parser{b: v[1:]}
	at := p.time()
	reason := p.bytes()
	if p.err != nil {
		return DeadLetter{}, fmt.Errorf("%w: malformed dead letter", errBadRecord)
	}
	d := DeadLetter{Seq: seq, Reason: string(reason), At: at}
	msg, err := decodeRecord(p.b)
	if err != nil {
		d.Raw = append([]byte(nil), p.b...)
		return d, nil
	}
	d.Msg = msg
	return d, nil
}

// parser reads varint-framed fields; the first failure sticks in err.
type parser struct {
	b   []byte
	err error
}

func (p *parser) uvarint() uint64 {
	if p.err != nil {
		return 0
	}
	n, k := binary.Uvarint(p.b)
	if k <= 0 {
		p.err = errBadRecord
		return 0
	}
	p.b = p.b[k:]
	return n
}

func (p *parser) varint() int64 {
	if p.err != nil {
		return 0
	}
	n, k := binary.Varint(p.b)
	if k <= 0 {
		p.err = errBadRecord
		return 0
	}
	p.b = p.b[k:]
	return n
}

func (p *parser) bytes() []byte {
	n := p.uvarint()
	if p.err != nil {
		return nil
	}
	if n > uint64(len(p.b)) {
		p.err = errBadRecord
		return nil
	}
	b := p.b[:n:n]
	p.b = p.b[n:]
	return b
}

func (p *parser) time() time.Time {
	sec := p.varint()
	nsec := p.uvarint()
	if p.err != nil || nsec >= 1e9 {
		p.err = errBadRecord
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
