package central

import (
	"context"
	"errors"
	"fmt"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/ingest"
)

// Sink is the device protocol's sink on central: phones' messages go
// straight into the store, without a home (the roster has already tied the
// connection to a known child).
type Sink struct{ DB store.Store }

var _ ingest.Sink = Sink{}

// Store implements ingest.Sink. The ingest package sends a message's ack
// or refusal from the error: a rejected message becomes an error it
// understands (SinkError). The messages of one call that were stored stay
// stored even when another is refused; a resend of them changes nothing.
func (s Sink) Store(ctx context.Context, msgs []hearth.Message) error {
	results, err := s.DB.Apply(ctx, "", msgs)
	if err != nil {
		if errors.Is(err, hearth.ErrUnavailable) {
			return err
		}
		// Anything else the store cannot do now is, for a phone, "retry later".
		return fmt.Errorf("%w: %w", hearth.ErrUnavailable, err)
	}
	return SinkError(results)
}

// SinkError maps the first rejected Result to the error the ingest package
// answers with: hearth.ErrUnknownChild for an unknown or foreign child, a
// *hearth.InvalidError carrying the code and reason otherwise; nil when
// every message was stored.
func SinkError(results []store.Result) error {
	for _, r := range results {
		if r.Status == store.StatusOK {
			continue
		}
		switch r.Code {
		case store.CodeUnknownChild, store.CodeForeignChild:
			return fmt.Errorf("%w: %s", hearth.ErrUnknownChild, r.Error)
		case "":
			return &hearth.InvalidError{Code: hearth.CodeInvalid, Reason: r.Error}
		}
		return &hearth.InvalidError{Code: r.Code, Reason: r.Error}
	}
	return nil
}

// Roster is the device protocol's roster on central: every child of every home.
type Roster struct{ DB store.Store }

var _ ingest.Roster = Roster{}

// Known implements ingest.Roster.
func (r Roster) Known(ctx context.Context, hash string) (bool, error) {
	_, ok, err := r.DB.ChildHome(ctx, hash)
	return ok, err
}
