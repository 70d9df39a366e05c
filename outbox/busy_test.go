package outbox

import (
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth"
)

// Ensure that StoreAsync never makes its caller wait: with the writer's
// queue full it answers ErrBusy (a "retry later") at once.
func TestOutbox_StoreAsync_BusyAnswersAtOnce(t *testing.T) {
	o := mustOpen(t, filepath.Join(t.TempDir(), "outbox.db"), Options{})
	msg := []hearth.Message{{ChildHash: "kid", Kind: hearth.KindLocation, ReceivedAt: time.Now(), Via: hearth.ViaWS, Data: []byte(`{}`)}}
	// A callback that blocks stalls the writer, whose callbacks must be
	// cheap: exactly the stuck writer this guards against.
	stall, stalled := make(chan struct{}), make(chan struct{})
	o.StoreAsync(msg, func(error) { close(stalled); <-stall })
	<-stalled
	var busy atomic.Int64
	for range cap(o.reqs) + 5 {
		o.StoreAsync(msg, func(err error) {
			if errors.Is(err, ErrBusy) && errors.Is(err, hearth.ErrUnavailable) {
				busy.Add(1)
			}
		})
	}
	if got := busy.Load(); got != 5 {
		t.Fatalf("%d answered busy at once, want 5", got)
	}
	close(stall)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if got := o.Stats().Depth; got != int64(cap(o.reqs))+1 {
		t.Fatalf("depth %d, want %d (every queued message stored)", got, cap(o.reqs)+1)
	}
}
