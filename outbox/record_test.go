package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that records round-trip every field, including odd times.
func TestRecord_RoundTrip(t *testing.T) {
	synced := msg(2)
	synced.Synced = true
	for _, m := range []hearth.Message{
		msg(1),
		synced,
		{},
		{ChildHash: "c", Kind: "future_kind", Via: "carrier-pigeon", ReceivedAt: time.Date(1969, 7, 20, 20, 17, 0, 999999999, time.UTC), Data: []byte(`{}`)},
		{ReceivedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600)), Data: []byte(`"` + strings.Repeat("x", 70000) + `"`)},
	} {
		v := appendRecord(nil, &m)
		got, err := decodeRecord(v)
		if err != nil {
			t.Fatalf("decode %+v: %v", m, err)
		}
		if got.ChildHash != m.ChildHash || got.Kind != m.Kind || got.Via != m.Via || !got.ReceivedAt.Equal(m.ReceivedAt) ||
			!bytes.Equal(got.Data, m.Data) || got.Synced != m.Synced {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
		if recordSize(v) != int64(m.Size()) {
			t.Fatalf("recordSize = %d, want %d", recordSize(v), m.Size())
		}
	}
}

// Ensure that version 1 records (format 1 files) still decode, as not
// synced, with the same quota size.
func TestRecord_V1(t *testing.T) {
	m := msg(5)
	v := recordV1Of(m)
	got, err := decodeRecord(v)
	if err != nil {
		t.Fatal(err)
	}
	assertMsg(t, got, m)
	if got.Synced {
		t.Fatal("a version 1 record decoded as synced")
	}
	if recordSize(v) != int64(m.Size()) {
		t.Fatalf("recordSize = %d, want %d", recordSize(v), m.Size())
	}
}

// recordV1Of is the version 1 record of m, as format 1 builds stored it:
// the version 2 record without its flags byte.
func recordV1Of(m hearth.Message) []byte {
	m.Synced = false
	v2 := appendRecordV2(nil, &m)
	v := append([]byte{recordV1}, v2[2:len(v2)-4]...)
	return binary.BigEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
}

// Ensure that damaged records are refused with errBadRecord, never decoded
// into something else.
func TestRecord_Bad(t *testing.T) {
	m := msg(7)
	good := appendRecord(nil, &m)
	flip := bytes.Clone(good)
	flip[5] ^= 0x20
	version := bytes.Clone(good)
	version[0] = 9
	flags := withCRC(append([]byte{recordV3, 0x80}, good[2:len(good)-4]...))
	noFlags := withCRC([]byte{recordV2})
	for name, v := range map[string][]byte{
		"unknown flag":  flags,
		"no flags byte": noFlags,
		"empty":         nil,
		"short":         good[:3],
		"truncated":     good[:len(good)-1],
		"bit flip":      flip,
		"version":       version,
		"trailing":      append(bytes.Clone(good), 0),
	} {
		if _, err := decodeRecord(v); !errors.Is(err, errBadRecord) {
			t.Errorf("%s: err = %v, want errBadRecord", name, err)
		}
		if recordSize(v) < sizeOverhead {
			t.Errorf("%s: recordSize = %d", name, recordSize(v))
		}
	}
}

func withCRC(v []byte) []byte {
	return binary.BigEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
}

// Ensure that a dead letter keeps its reason, time and record, and keeps an
// undecodable record raw.
func TestRecord_Dead(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
	m := msg(3)
	d, err := decodeDead(42, appendDead(nil, at, "unknown child", appendRecord(nil, &m)))
	if err != nil || d.Seq != 42 || d.Reason != "unknown child" || !d.At.Equal(at) || d.Raw != nil || d.Msg.ChildHash != m.ChildHash {
		t.Fatalf("decodeDead = %+v, %v", d, err)
	}
	d, err = decodeDead(1, appendDead(nil, at, "undecodable record", []byte("junk")))
	if err != nil || string(d.Raw) != "junk" {
		t.Fatalf("decodeDead of junk = %+v, %v", d, err)
	}
	if _, err := decodeDead(1, []byte{7}); !errors.Is(err, errBadRecord) {
		t.Fatalf("decodeDead of a bad header: %v", err)
	}
}

// FuzzDecodeRecord checks that decoding never panics and that whatever
// decodes re-encodes to the same bytes (a version 1 or 2 record to its own
// version's form: there is exactly one encoding of each message in each
// version). A version 3 record's fragment is read by a JSON decoder that
// takes more than one spelling, so there the message must survive a
// second round trip instead.
func FuzzDecodeRecord(f *testing.F) {
	for i := 0; i < 3; i++ {
		m := msg(i)
		f.Add(appendRecord(nil, &m))
		f.Add(recordV1Of(m))
		m.Synced = true
		f.Add(appendRecord(nil, &m))
	}
	f.Add([]byte{recordV1, 0xff, 0xff})
	f.Add([]byte{recordV2, 0xff, 0xff})
	f.Add(withCRC([]byte{recordV2, 0x02}))
	f.Fuzz(func(t *testing.T, v []byte) {
		_ = recordSize(v)
		_, _ = decodeDead(1, v)
		m, err := decodeRecord(v)
		if err != nil {
			return
		}
		again := appendRecord(nil, &m)
		if v[0] == recordV3 {
			m2, err := decodeRecord(again)
			if err != nil {
				t.Fatalf("re-encoded %x does not decode: %v", again, err)
			}
			assertMsg(t, m2, m)
			return
		}
		if v[0] == recordV2 {
			again = appendRecordV2(nil, &m)
		}
		if v[0] == recordV1 {
			if m.Synced {
				t.Fatalf("version 1 record %x decoded as synced", v)
			}
			again = recordV1Of(m)
		}
		if !bytes.Equal(again, v) {
			t.Fatalf("re-encoded %x, stored %x", again, v)
		}
	})
}
