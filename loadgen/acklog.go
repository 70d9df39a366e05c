package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

// ackFlushEvery bounds how long an acked line may wait in the buffer; a
// crash test that kills the generator itself loses at most this much.
const ackFlushEvery = 100 * time.Millisecond

// ackLog writes one line per acked message. Its methods are safe for
// concurrent use and do nothing on a nil *ackLog.
type ackLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	err  error
	stop chan struct{}
	done chan struct{}
}

func newAckLog(w io.Writer) *ackLog {
	if w == nil {
		return nil
	}
	l := &ackLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go l.flusher()
	return l
}

func (l *ackLog) flusher() {
	defer close(l.done)
	t := time.NewTicker(ackFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.flushLocked()
			l.mu.Unlock()
		}
	}
}

func (l *ackLog) flushLocked() {
	if err := l.w.Flush(); err != nil && l.err == nil {
		l.err = fmt.Errorf("write ack log: %w", err)
	}
}

// record appends the line of one acked message.
func (l *ackLog) record(child, kind, key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.WriteString(child)
	l.w.WriteByte('\t')
	l.w.WriteString(kind)
	l.w.WriteByte('\t')
	l.w.WriteString(key)
	if err := l.w.WriteByte('\n'); err != nil && l.err == nil {
		l.err = fmt.Errorf("write ack log: %w", err)
	}
}

// close flushes what is buffered and returns the first write error.
func (l *ackLog) close() error {
	if l == nil {
		return nil
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	return l.err
}
