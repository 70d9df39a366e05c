// Package jsonscan walks JSON that json.Valid has accepted, without
// decoding it: the fast paths of frame and payload decoding use it to find
// an object's members, then decode only the values they need.
package jsonscan

// Member is one member of an object: its key (without quotes; escapes, if
// any, left as they are) and its raw value.
type Member struct {
	Key, Value []byte
}

// Members calls fn for each member of the object b, in order, until fn
// returns false. b must be a JSON object that json.Valid accepted.
func Members(b []byte, fn func(m Member) bool) {
	i := SkipSpace(b, 1)
	for i < len(b) && b[i] != '}' {
		kEnd := SkipValue(b, i) - 1                    // the key's closing quote
		vStart := SkipSpace(b, SkipSpace(b, kEnd+1)+1) // past the colon
		vEnd := SkipValue(b, vStart)
		if !fn(Member{Key: b[i+1 : kEnd], Value: b[vStart:vEnd:vEnd]}) {
			return
		}
		i = SkipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipValue returns the end of the JSON value starting at i.
func SkipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // a scalar ends at its container's end
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
