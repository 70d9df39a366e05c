package jsonscan

import (
	"encoding/json"
	"testing"
)

// Ensure that Members yields each member's key and raw value, whatever
// the spacing, nesting and escapes inside strings.
func TestMembers(t *testing.T) {
	doc := []byte(` { "a" : 1 , "b\"c":"x\"}" ,"d":[1,{"e":"]"}], "f":{"g":null} ,"h":true}`)
	doc = doc[1:] // Members takes the object from its brace
	if !json.Valid(doc) {
		t.Fatal("test document is not JSON")
	}
	var got []string
	Members(doc, func(m Member) bool {
		got = append(got, string(m.Key)+"="+string(m.Value))
		return true
	})
	want := []string{`a=1`, `b\"c="x\"}"`, `d=[1,{"e":"]"}]`, `f={"g":null}`, `h=true`}
	if len(got) != len(want) {
		t.Fatalf("members %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("member %d = %s, want %s", i, got[i], want[i])
		}
	}
	n := 0
	Members([]byte(`{"a":1,"b":2}`), func(Member) bool { n++; return false })
	if n != 1 {
		t.Errorf("Members went on after fn returned false: %d calls", n)
	}
}
