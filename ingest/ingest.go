// Package ingest speaks the device protocol of the seed system over fasthttp:
// the WebSocket sessions (direct and auth flow) and the HTTP fallback. It
// validates what phones send and hands it to a Sink; the edge daemon and
// central both serve phones through it.
package ingest

import (
	"context"

	"github.com/guardianai/hearth"
)

// Sink receives validated messages.
type Sink interface {
	// Store makes msgs durable and returns nil only once they are: the
	// protocol acks a message after Store returns nil for it. It returns
	// hearth.ErrFull or hearth.ErrUnavailable (possibly wrapped) when the
	// data cannot be taken now, and must be safe for concurrent use.
	Store(ctx context.Context, msgs []hearth.Message) error
}

// Roster tells which children may send data.
type Roster interface {
	// Known reports whether childHash belongs to a known child. An error
	// means the roster cannot be consulted now (the phone retries later).
	Known(ctx context.Context, childHash string) (bool, error)
}

// AsyncSink is a Sink that can also report completion by callback. The
// WebSocket session uses it when the sink offers it, sparing a goroutine
// per message on the hot path.
type AsyncSink interface {
	// StoreAsync stores msgs like Store and calls done exactly once with
	// the outcome. done must be cheap: it may run on the sink's own goroutine.
	StoreAsync(msgs []hearth.Message, done func(error))
}
