package hearth

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/guardianai/hearth/internal/jsonscan"
)

// splitObject is json.Unmarshal of a JSON object into a map of raw
// members, without reflection: once json.Valid has checked data, one pass
// splits the members; a repeated key keeps its last value, as
// encoding/json does. The values are slices of data, not copies: nothing
// Check returns keeps them. ok is false for a key with an escape or
// invalid UTF-8, which the caller then leaves to encoding/json.
func splitObject(data []byte) (obj map[string]json.RawMessage, ok bool) {
	if !json.Valid(data) {
		return nil, false
	}
	obj = make(map[string]json.RawMessage, 4)
	ok = true
	jsonscan.Members(data, func(m jsonscan.Member) bool {
		if bytes.IndexByte(m.Key, '\\') >= 0 || !utf8.Valid(m.Key) {
			ok = false
			return false
		}
		obj[internField(m.Key)] = m.Value
		return true
	})
	if !ok {
		return nil, false
	}
	return obj, true
}

// internField spares an allocation for the field names of the payloads.
func internField(k []byte) string {
	for _, f := range [...]string{"timestamp", "latitude", "longitude", "date", "total_screen_time",
		"app_wise_data", "logs", "url", "accessed", "child_hash"} {
		if string(k) == f {
			return f
		}
	}
	return string(k)
}

// appendLocation appends l as json.Marshal writes it.
func appendLocation(dst []byte, l *Location) []byte {
	dst = append(dst, `{"timestamp":"`...)
	dst = l.Timestamp.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","latitude":`...)
	dst = appendFloat(dst, l.Latitude)
	dst = append(dst, `,"longitude":`...)
	dst = appendFloat(dst, l.Longitude)
	return append(dst, '}')
}

// appendFloat formats f as encoding/json does: like ES6, 'e' only for
// very small or large magnitudes, with a one-digit negative exponent.
func appendFloat(dst []byte, f float64) []byte {
	abs, format := math.Abs(f), byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
