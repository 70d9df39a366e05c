// Package ingest speaks the device protocol of the seed system over fasthttp:
// the WebSocket sessions (direct and auth flow) and the HTTP fallback. It
// checks what phones send with the domain's one set of rules (hearth.Check)
// and hands it to a Sink; the edge daemon and central both serve phones
// through it.
package ingest

import (
	"context"

	"github.com/guardianai/hearth"
)

// Sink receives checked messages.
type Sink interface {
	// StoreAsync makes msgs durable and calls done exactly once with the
	// outcome for all of them: nil once they are durable (the protocol
	// then acks them), else an error wrapping hearth.ErrFull or
	// hearth.ErrUnavailable when the data cannot be taken now. It must
	// never block the caller: a sink that cannot queue msgs answers
	// hearth.ErrUnavailable at once. done may run on the sink's own
	// goroutine and must be cheap. Safe for concurrent use.
	StoreAsync(msgs []hearth.Message, done func(error))
}

// MessageSink is a Sink that can refuse one message while it stores the
// others (central, where a child may be unknown or data invalid); the
// HTTP fallback then tells each section the truth.
type MessageSink interface {
	Sink
	// StoreEach is StoreAsync with one outcome per message, in order.
	StoreEach(msgs []hearth.Message, done func(errs []error))
}

// Roster tells which children may send data.
type Roster interface {
	// Known reports whether childHash belongs to a known child. An error
	// means the roster cannot be consulted now (the phone retries later).
	Known(ctx context.Context, childHash string) (bool, error)
}
