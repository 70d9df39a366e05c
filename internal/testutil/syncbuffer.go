package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// SyncBuffer is a bytes.Buffer that a logger (or any writer on another
// goroutine) and a test may share: writes and reads are serialised.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines returns what was written so far as lines, without the last
// (empty) one after a final newline.
func (s *SyncBuffer) Lines() []string {
	text := strings.TrimSuffix(s.String(), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}
