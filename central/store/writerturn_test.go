package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that on SQLite a batch waiting longer than WriterWait for the
// single writer, behind another batch, fails with ErrBusy (central sheds
// it with 503), that it is stored once the writer is free, and that
// without WriterWait a batch waits as long as its context.
func TestSQLite_WriterWait_ShedsABatchThatWaitsTooLong(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "c.db"), Options{WriterWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	home, _, err := s.AddHome(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	child, err := s.AddChild(ctx, home, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	batch := []hearth.Message{locMsg(child, now.Add(-time.Minute), 1, 2, now)}

	s.turn <- struct{}{} // another batch has the writer
	if _, err := s.Apply(ctx, home, batch); !errors.Is(err, ErrBusy) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a batch behind another past WriterWait: %v, want ErrBusy (an ErrUnavailable)", err)
	}
	<-s.turn
	if res, err := s.Apply(ctx, home, batch); err != nil || len(res) != 1 || res[0].Status != StatusOK {
		t.Fatalf("the same batch once the writer is free: %v %+v", err, res)
	}

	s.opts.WriterWait = 0 // waits as long as its context
	s.turn <- struct{}{}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := s.Apply(short, home, batch); errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("without WriterWait, a batch whose context ends: %v, want its deadline, not busy", err)
	}
	<-s.turn
}
