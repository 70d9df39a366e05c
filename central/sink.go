package central

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central/store"
	"github.com/guardianai/hearth/ingest"
)

// Sink is the device protocol's sink on central: phones' messages go
// straight into the store, without a home (the roster has already tied the
// connection to a known child). Messages of all sessions that wait at the
// same time share one store transaction (group commit): a transaction per
// message would cap central at a few thousand messages per second on
// SQLite's single writer.
type Sink struct {
	db      store.Store
	timeout time.Duration

	mu     sync.RWMutex // orders sends on reqs against Close
	closed bool
	reqs   chan *sinkRequest
	wg     sync.WaitGroup
}

// sinkRequest is one StoreEach call waiting for its group's transaction.
type sinkRequest struct {
	msgs []hearth.Message
	done func([]error)
}

// maxGroupMessages bounds one group's transaction.
const maxGroupMessages = 2000

// queueLength bounds the calls waiting for a transaction; beyond it a
// phone is told to retry later at once instead of holding its session.
const queueLength = 1024

var _ ingest.MessageSink = (*Sink)(nil)

// NewSink starts a Sink over db with workers concurrent transactions (1
// suits SQLite's single writer; PostgreSQL takes several), each bounded by
// timeout. Close stops it.
func NewSink(db store.Store, workers int, timeout time.Duration) *Sink {
	s := &Sink{db: db, timeout: timeout, reqs: make(chan *sinkRequest, queueLength)}
	for range max(1, workers) {
		s.wg.Add(1)
		go s.run()
	}
	return s
}

// StoreAsync implements ingest.Sink: done gets the first refusal among
// msgs, nil when all were stored.
func (s *Sink) StoreAsync(msgs []hearth.Message, done func(error)) {
	s.StoreEach(msgs, func(errs []error) { done(errors.Join(errs...)) })
}

// StoreEach implements ingest.MessageSink: each message is stored or
// refused on its own (an unknown child, data the store refuses), in one
// transaction with whatever other sessions are waiting. It never blocks:
// with the queue full or the sink closed every message is answered
// hearth.ErrUnavailable at once. done runs on a worker goroutine.
func (s *Sink) StoreEach(msgs []hearth.Message, done func([]error)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		done(repeat(fmt.Errorf("%w: central is shutting down", hearth.ErrUnavailable), len(msgs)))
		return
	}
	select {
	case s.reqs <- &sinkRequest{msgs: msgs, done: done}:
	default:
		done(repeat(fmt.Errorf("%w: central is busy", hearth.ErrUnavailable), len(msgs)))
	}
}

func repeat(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// Close applies what is queued and stops the workers; later calls are
// refused as unavailable.
func (s *Sink) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.reqs)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Sink) run() {
	defer s.wg.Done()
	var group []*sinkRequest
	for r := range s.reqs {
		group = s.gather(append(group[:0], r))
		s.apply(group)
		clear(group)
	}
}

// gather adds to group what is already queued, without waiting.
func (s *Sink) gather(group []*sinkRequest) []*sinkRequest {
	n := len(group[0].msgs)
	for n < maxGroupMessages {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return group
			}
			group = append(group, r)
			n += len(r.msgs)
		default:
			return group
		}
	}
	return group
}

// apply stores a group in one transaction and answers each request.
func (s *Sink) apply(group []*sinkRequest) {
	var all []hearth.Message
	for _, r := range group {
		all = append(all, r.msgs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	results, err := s.db.Apply(ctx, "", all)
	cancel()
	if err != nil && !errors.Is(err, hearth.ErrUnavailable) {
		// Anything else the store cannot do now is, for a phone, "retry later".
		err = fmt.Errorf("%w: %w", hearth.ErrUnavailable, err)
	}
	for _, r := range group {
		if err != nil {
			r.done(repeat(err, len(r.msgs)))
			continue
		}
		r.done(ResultErrors(results[:len(r.msgs)]))
		results = results[len(r.msgs):]
	}
}

// ResultErrors maps each Result to the error the ingest package answers
// with: nil when stored, hearth.ErrUnknownChild for an unknown or foreign
// child, a *hearth.InvalidError carrying the code and reason otherwise.
func ResultErrors(results []store.Result) []error {
	errs := make([]error, len(results))
	for i, r := range results {
		errs[i] = resultError(r)
	}
	return errs
}

func resultError(r store.Result) error {
	switch {
	case r.Status == store.StatusOK:
		return nil
	case r.Code == store.CodeUnknownChild, r.Code == store.CodeForeignChild:
		return fmt.Errorf("%w: %s", hearth.ErrUnknownChild, r.Error)
	case r.Code == "":
		return &hearth.InvalidError{Code: hearth.CodeInvalid, Reason: r.Error}
	}
	return &hearth.InvalidError{Code: r.Code, Reason: r.Error}
}

// Roster is the device protocol's roster on central: every child of every home.
type Roster struct{ DB store.Store }

var _ ingest.Roster = Roster{}

// Known implements ingest.Roster.
func (r Roster) Known(ctx context.Context, hash string) (bool, error) {
	_, ok, err := r.DB.ChildHome(ctx, hash)
	return ok, err
}
