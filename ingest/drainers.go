package ingest

import "sync/atomic"

// drainers keeps the goroutines that wrote a session's replies, with the
// stacks they grew, for the next burst of any session. A phone that waits
// for each ack makes every reply a burst of one; a fresh goroutine per reply
// grew its stack on each socket write (6 % of hearthd's CPU at 50 phones).
// At most maxIdle wait for work, parked on a channel with no timer; the
// others exit, so a quiet server keeps a bounded few.
type drainers struct {
	work    chan *session // unbuffered: a send succeeds only when one waits
	idle    atomic.Int32
	maxIdle int32
	quit    <-chan struct{} // closed at shutdown: the parked ones exit
	started atomic.Int64    // goroutines started, for tests
}

func newDrainers(maxIdle int, quit <-chan struct{}) *drainers {
	return &drainers{work: make(chan *session), maxIdle: int32(maxIdle), quit: quit}
}

// start has ss's queue drained by a parked drainer, or by a new one.
func (d *drainers) start(ss *session) {
	select {
	case d.work <- ss:
	default:
		d.started.Add(1)
		go d.loop(ss)
	}
}

func (d *drainers) loop(ss *session) {
	for {
		ss.drain()
		if d.idle.Add(1) > d.maxIdle {
			d.idle.Add(-1)
			return
		}
		select {
		case ss = <-d.work:
			d.idle.Add(-1)
		case <-d.quit:
			d.idle.Add(-1)
			return
		}
	}
}
