package ingest

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// emptySession is a session whose queue is empty: drain returns at once.
func emptySession() *session {
	ss := &session{replies: make(chan *reply, 1)}
	ss.writing.Store(true)
	ss.writers.Add(1)
	return ss
}

// settle waits until the number of goroutines is at most want.
func settle(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// Ensure that a burst of drains leaves at most maxIdle drainers parked,
// that a parked one takes the next session's queue, and that all of them
// exit at shutdown.
func TestDrainers_BoundedReusedAndStopped(t *testing.T) {
	base := runtime.NumGoroutine()
	quit := make(chan struct{})
	d := newDrainers(4, quit)
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss := emptySession()
			d.start(ss)
			ss.writers.Wait()
		}()
	}
	wg.Wait()
	settle(t, base+4)
	if idle := d.idle.Load(); idle < 1 || idle > 4 {
		t.Fatalf("%d drainers parked after the burst, want 1 to 4", idle)
	}

	parked, started := runtime.NumGoroutine(), d.started.Load()
	for range 50 { // one at a time: a parked drainer takes each
		ss := emptySession()
		d.start(ss)
		ss.writers.Wait()
		for d.idle.Load() == 0 { // back to parking
			runtime.Gosched()
		}
	}
	if n := d.started.Load() - started; n != 0 {
		t.Fatalf("%d drainers started for sequential drains: parked ones were not reused", n)
	}
	if n := runtime.NumGoroutine(); n > parked {
		t.Fatalf("%d goroutines after sequential drains, %d before", n, parked)
	}

	close(quit)
	settle(t, base)
}
