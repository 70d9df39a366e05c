package hearth

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzValidate checks every kind against any input, with the time checks
// off and on: Validate never panics, every refusal is an *InvalidError with
// a field, code and reason, and an accepted payload comes out as compact
// JSON that validates again to the very same bytes.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{seedScreenTime, seedLocation, seedSiteAccess, `{}`, `[]`, `null`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, w := range []Window{{}, testWindow} {
			for _, k := range Kinds {
				checkValidate(t, k, data, w)
			}
		}
	})
}

func checkValidate(t *testing.T, k Kind, data []byte, w Window) {
	out, err := Validate(k, data, w)
	if err != nil {
		var ie *InvalidError
		if !errors.As(err, &ie) {
			t.Fatalf("%s: error %T %q is not an *InvalidError", k, err, err)
		}
		if ie.Field == "" || ie.Reason == "" || ie.Code == "" {
			t.Fatalf("%s: incomplete refusal %+v", k, *ie)
		}
		if out != nil {
			t.Fatalf("%s: output %q along with error %v", k, out, err)
		}
		return
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil || !bytes.Equal(compact.Bytes(), out) {
		t.Fatalf("%s: output is not compact JSON: %q (%v)", k, out, err)
	}
	again, err := Validate(k, out, w)
	if err != nil {
		t.Fatalf("%s: canonical output %s refused: %v", k, out, err)
	}
	if !bytes.Equal(again, out) {
		t.Fatalf("%s: not idempotent:\n1st %s\n2nd %s", k, out, again)
	}
}
