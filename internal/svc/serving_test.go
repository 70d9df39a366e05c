package svc

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth/internal/testutil"
)

// acceptAll serves ln until Accept fails, like a server's Serve.
func acceptAll(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		c.Close()
	}
}

// Ensure that a listener closed under the server is reported with its
// name and logged, and that one closed during a shutdown is not.
func TestServing_ListenerStops(t *testing.T) {
	var logs testutil.SyncBuffer
	var mu sync.Mutex
	up := map[string]bool{}
	s := NewServing(slog.New(slog.NewTextHandler(&logs, nil)), func(name string, ok bool) {
		mu.Lock()
		up[name] = ok
		mu.Unlock()
	})
	pub, _ := net.Listen("tcp", "127.0.0.1:0")
	adm, _ := net.Listen("tcp", "127.0.0.1:0")
	s.Go("public", pub, acceptAll)
	s.Go("admin", adm, acceptAll)
	if err := s.Err(); err != nil {
		t.Fatalf("Err while serving: %v", err)
	}
	pub.Close()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if s.Err() == nil {
			return errors.New("a closed listener is not reported")
		}
		return nil
	})
	if err := s.Err(); !strings.Contains(err.Error(), "public listener "+pub.Addr().String()+" stopped serving") {
		t.Fatalf("Err = %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "/readyz fails") {
		t.Fatalf("not logged at ERROR:\n%s", logs.String())
	}
	mu.Lock()
	if up["public"] || !up["admin"] {
		t.Errorf("listener states %v", up)
	}
	mu.Unlock()
	s.Stop()
	adm.Close()
	before := s.Err().Error()
	// The admin goroutine may still be returning: its stop must never be
	// counted, so check the state it would change, after it surely ran.
	testutil.WaitFor(t, 5*time.Second, func() error {
		if c, err := net.Dial("tcp", adm.Addr().String()); err == nil {
			c.Close()
			return errors.New("admin still accepts")
		}
		return nil
	})
	if got := s.Err().Error(); got != before {
		t.Fatalf("a listener closed in a shutdown was reported: %v", got)
	}
}
