package hearth

import "errors"

// ErrUnavailable means the receiving side cannot take data now (store down,
// shutting down). The phone must keep the data and resend later.
var ErrUnavailable = errors.New("server cannot take data now; retry later")

// ErrFull means the outbox has reached its quota. The phone must keep the
// data and resend later; nothing already acknowledged is dropped.
var ErrFull = errors.New("storage quota reached; keep the data and retry later")

// ErrUnknownChild means the child hash is not on the roster.
var ErrUnknownChild = errors.New("unknown child")

// InvalidError is a permanent refusal of a message's content: resending the
// same data can never succeed. Reason is the text shown to the client and
// Field the JSON path of the offending value.
type InvalidError struct {
	Code   string // a short metric label: one of the Code constants
	Field  string
	Reason string
}

// Codes of InvalidError, used as metric labels.
const (
	CodeInvalid       = "invalid"
	CodeUnknownType   = "unknown_type"
	CodeTooOld        = "too_old"
	CodeFuture        = "future"
	CodeChildMismatch = "child_mismatch" // a child_hash inside the data names another child
)

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// invalid builds an *InvalidError.
func invalid(field, reason string) error {
	return &InvalidError{Code: CodeInvalid, Field: field, Reason: reason}
}

// InvalidCode returns the metric label of err: its Code when err is an
// *InvalidError, "" otherwise.
func InvalidCode(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

// IsInvalid reports whether err is a permanent content refusal.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}
