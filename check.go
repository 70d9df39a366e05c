package hearth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Mode is how Check treats input that the seed system accepted but that is
// not the protocol's canonical form.
type Mode uint8

const (
	// ModeSeed accepts and normalises what the seed accepted, and names
	// every skipped or changed item in the Notes: phones in the field
	// rely on it.
	ModeSeed Mode = iota
	// ModeStrict refuses all of that as invalid. Clients that send
	// "Hearth-Protocol: 2" get it, and so does every message central reads
	// from an edge (the edge forwards only the canonical form).
	ModeStrict
)

// Rules are what Check judges a payload by.
type Rules struct {
	Mode   Mode
	Window Window
	// Child is the sender's child hash: a "child_hash" inside the data must
	// equal it. "" skips the check (central's batch path: the canonical
	// form holds none).
	Child string
}

// Checked is a data message that passed Check: its typed form, its
// canonical encoding and what was skipped or normalised on the way.
type Checked struct {
	Kind    Kind
	Payload Payload
	Data    []byte // canonical compact JSON; Check reads it back unchanged in ModeStrict
	Notes   []Note
}

// Note names one input item Check skipped (Ignored) or normalised.
type Note struct {
	Field   string // JSON path inside data, e.g. "logs[2].accessed"
	Reason  string // metric label: one of the Note constants
	Text    string // what happened, for the phone's developer
	Ignored bool   // the item was skipped; false: it was normalised
}

func (n Note) String() string { return n.Field + ": " + n.Text }

// Reasons of Notes, used as metric labels.
const (
	NoteUnknownField    = "unknown_field"
	NoteNumberString    = "number_in_string"
	NoteFraction        = "fractional_seconds"
	NoteTimeNoZone      = "time_without_zone"
	NoteTimeForm        = "time_form"
	NoteDateForm        = "date_form"
	NoteHourForm        = "hour_form"
	NoteBadHour         = "bad_hour"
	NoteBadSeconds      = "bad_seconds"
	NoteNotObject       = "not_an_object"
	NoteMissingLogs     = "missing_logs"
	NoteLogsList        = "logs_as_list"
	NoteIncompleteVisit = "incomplete_visit"
	NoteTruthy          = "truthy_accessed"
	NoteURLControl      = "url_control_chars"
	NoteDuplicate       = "duplicate"
)

// Check decodes data as the payload of a message of kind k and applies
// every rule of the message contract: shapes, bounds, characters, the time
// window and, in ModeSeed, the seed system's normalisations. The edge and
// central both call it, so the edge acks only what central stores. Every
// refusal is an *InvalidError naming the field.
func Check(k Kind, data []byte, r Rules) (Checked, error) {
	if !k.Valid() {
		return Checked{}, &InvalidError{Code: CodeUnknownType, Field: "type", Reason: fmt.Sprintf("unknown message type %q", clip(string(k)))}
	}
	rd := &reader{mode: r.Mode, w: r.Window}
	obj, err := rd.object("data", data)
	if err != nil {
		return Checked{}, err
	}
	if err := checkInnerChild(obj, r.Child); err != nil {
		return Checked{}, err
	}
	var p Payload
	switch k {
	case KindScreenTime:
		p.ScreenTime, err = rd.screenTime(obj)
	case KindLocation:
		p.Location, err = rd.location(obj)
	case KindSiteAccess:
		p.SiteAccess, err = rd.siteAccess(obj)
	}
	if err != nil {
		return Checked{}, err
	}
	return Checked{Kind: k, Payload: p, Data: p.encode(), Notes: rd.notes}, nil
}

// CheckChildHash checks the form of a child hash (not whether it is
// known): 1-128 bytes of printable ASCII without space or '/'. NUL,
// control characters and DEL are refused with the rest.
func CheckChildHash(h string) error {
	if h == "" {
		return errors.New("child_hash is missing")
	}
	if len(h) > MaxChildHashLen {
		return fmt.Errorf("child_hash is longer than %d characters", MaxChildHashLen)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return errors.New("child_hash contains a character that is not allowed (control, space, '/' or non-ASCII)")
		}
	}
	return nil
}

// checkInnerChild refuses a "child_hash" inside the data that names
// another child: the seed let one child's phone write as another.
func checkInnerChild(obj map[string]json.RawMessage, child string) error {
	raw, ok := obj["child_hash"]
	if !ok || isNull(raw) || child == "" {
		return nil
	}
	var h string
	if json.Unmarshal(raw, &h) != nil || h != child {
		return &InvalidError{Code: CodeChildMismatch, Field: "child_hash", Reason: "does not match the sender's child"}
	}
	return nil
}

// reader decodes one payload, collecting Notes in ModeSeed.
type reader struct {
	mode  Mode
	w     Window
	notes []Note
}

// lenient handles an item the seed accepted in a non-canonical form: in
// ModeSeed it is noted (note says what was done) and nil returned; in
// ModeStrict it is refused with refusal as the reason.
func (rd *reader) lenient(field, reason, note, refusal string, ignored bool) error {
	if rd.mode == ModeStrict {
		return invalid(field, refusal)
	}
	rd.notes = append(rd.notes, Note{Field: field, Reason: reason, Text: note, Ignored: ignored})
	return nil
}

// object decodes a JSON object into its members.
func (rd *reader) object(field string, data []byte) (map[string]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, invalid(field, "must be a JSON object")
	}
	if !utf8.Valid(data) {
		return nil, invalid(field, "is not valid UTF-8")
	}
	if obj, ok := splitObject(data); ok {
		return obj, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, invalid(field, "is not valid JSON")
	}
	return obj, nil
}

// unknownFields notes (or refuses) the members of obj that known lacks.
// prefix is "" for the data object itself, whose "child_hash" Check has
// already compared with the sender's; anywhere else it is unknown too.
func (rd *reader) unknownFields(prefix string, obj map[string]json.RawMessage, known ...string) error {
	var extra []string
	for name := range obj {
		if !contains(known, name) && !(prefix == "" && name == "child_hash") {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		label := clip(name)
		if label == "" {
			label = `""` // a refusal always names its field
		}
		if err := rd.lenient(prefix+label, NoteUnknownField, "unknown field; ignored", "is not a field of this message", true); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}
