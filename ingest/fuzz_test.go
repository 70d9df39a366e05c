package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/guardianai/hearth"
)

// FuzzDecodeFrame checks that DecodeFrame never panics, refuses only with a
// *FrameError carrying a reason and a message, and on success returns a
// non-empty type with an id and data that are valid JSON as received.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{seedScreenTimeFrame, seedLocationFrame, seedSiteAccessFrame,
		`{"type":"auth","child_hash":"abc"}`, `{"type":"ping","id":1}`, `[]`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %q is not a *FrameError", err, err)
			}
			if fe.Reason == "" || fe.Msg == "" {
				t.Fatalf("incomplete FrameError %+v", *fe)
			}
			return
		}
		if fr.Type == "" {
			t.Fatalf("accepted %q with an empty type", b)
		}
		if fr.ID != nil && !json.Valid(fr.ID) {
			t.Fatalf("id %q is not valid JSON", fr.ID)
		}
		if fr.Data != nil && (!json.Valid(fr.Data) || string(fr.Data) == "null") {
			t.Fatalf("data %q is not valid JSON, or null", fr.Data)
		}
	})
}

// FuzzDecodeBody checks that DecodeBody never panics, refuses only with a
// *BodyError with a message, and on success returns a non-empty child hash
// and sections that are consistent: an absent section has no data or
// error, a present one holds valid JSON, and an error has its reason.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		`{"child_hash":"abc","screen_time_info":` + stInfo + `,"location_info":` + locInfo + `,"site_access_info":` + saInfo + `}`,
		`{"child_hash":"abc","location_info":{"child_hash":"other"}}`, `{"child_hash":"abc","location_info":[]}`, `[]`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mode := range []hearth.Mode{hearth.ModeSeed, hearth.ModeStrict} {
			checkDecodeBody(t, b, mode)
		}
	})
}

func checkDecodeBody(t *testing.T, b []byte, mode hearth.Mode) {
	body, err := DecodeBody(b, mode)
	if err != nil {
		var be *BodyError
		if !errors.As(err, &be) {
			t.Fatalf("error %T %q is not a *BodyError", err, err)
		}
		if be.Msg == "" {
			t.Fatal("BodyError without a message")
		}
		return
	}
	if body.ChildHash == "" {
		t.Fatalf("accepted %q with an empty child_hash", b)
	}
	for i, s := range body.Sections {
		switch {
		case !s.Present && (s.Data != nil || s.Err != "" || s.Reason != ""):
			t.Fatalf("%s: absent section with content %+v", sectionNames[i], s)
		case s.Present && (!json.Valid(s.Data) || string(s.Data) == "null"):
			t.Fatalf("%s: present section with data %q", sectionNames[i], s.Data)
		case (s.Err == "") != (s.Reason == ""):
			t.Fatalf("%s: error %q with reason %q", sectionNames[i], s.Err, s.Reason)
		case s.Reason != "" && s.Reason != ReasonInvalid && s.Reason != ReasonChildMismatch:
			t.Fatalf("%s: unexpected reason %q", sectionNames[i], s.Reason)
		}
	}
}

// FuzzDecodeFrameFast checks that the fast path, whenever it answers,
// answers exactly what the encoding/json path does.
func FuzzDecodeFrameFast(f *testing.F) {
	for _, seed := range []string{seedScreenTimeFrame, seedLocationFrame, seedSiteAccessFrame,
		`{"type":"auth","child_hash":"abc"}`, `{"type":"ping","id":1}`, `{"Type":"x","type":"y"}`,
		`{ "type" : "location" , "id" : "a,b" , "data" : { "x" : [1, "}"] } }`, `{"type":"a","type":"b"}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSpace(b)
		fast, ok := decodeFrameFast(b)
		if !ok {
			return
		}
		var raw struct {
			Type      json.RawMessage `json:"type"`
			ID        json.RawMessage `json:"id"`
			ChildHash json.RawMessage `json:"child_hash"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", b, err)
		}
		var typ, child string
		_ = json.Unmarshal(raw.Type, &typ)
		_ = json.Unmarshal(raw.ChildHash, &child)
		data := raw.Data
		if string(data) == "null" {
			data = nil
		}
		if fast.Type != typ || fast.ChildHash != child || !bytes.Equal(fast.ID, raw.ID) || !bytes.Equal(fast.Data, data) {
			t.Fatalf("%q: fast %+v, encoding/json type %q child %q id %q data %q", b, fast, typ, child, raw.ID, data)
		}
	})
}
