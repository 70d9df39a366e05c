package forwarder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

// stubCentral answers batches itself: it holds each request until a second
// one is in progress too (or 2s pass), so two batches in flight show, and
// answers per message: "ok", except a 503 for the whole of the second
// batch it sees, and the rejection of seq 7.
type stubCentral struct {
	mu          sync.Mutex
	active, max int
	batches     int
	stored      map[uint64]int // seq -> times answered ok
}

func (s *stubCentral) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b, err := central.DecodeBatch(body, r.Header.Get("Content-Encoding"), central.BatchLimits{MaxDecompressed: 1 << 20, MaxMessages: 1000})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.active++
	s.max = max(s.max, s.active)
	s.batches++
	n := s.batches
	s.mu.Unlock()
	// Wait until two requests have been in progress at once, or give up.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		if s.max >= 2 || time.Now().After(deadline) {
			break
		}
		s.mu.Unlock()
	}
	defer s.mu.Unlock()
	s.active--
	if n == 2 {
		http.Error(w, `{"error":"try later"}`, http.StatusServiceUnavailable)
		return
	}
	var reply hearth.BatchReply
	for _, m := range b.Messages {
		res := hearth.BatchResult{Seq: m.Seq, Status: hearth.BatchStatusOK}
		if m.Seq == 7 {
			res = hearth.BatchResult{Seq: m.Seq, Status: hearth.BatchStatusRejected, Error: "test"}
		} else {
			s.stored[m.Seq]++
		}
		reply.Results = append(reply.Results, res)
	}
	_ = json.NewEncoder(w).Encode(reply)
}

// Ensure that two batches are in flight at once, and that each batch's
// answer acts on exactly its own messages: a 503 for one keeps its
// messages (sent again later), the other's are deleted or dead-lettered,
// and in the end every message is stored or dead-lettered, none lost.
func TestForwarder_Run_TwoBatchesInFlight(t *testing.T) {
	stub := &stubCentral{stored: map[uint64]int{}}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	ob := openOutbox(t)
	appendMsgs(t, ob, locations("kid", 0, 40)...)
	runForwarder(t, ob, srv.URL, "token", nil, func(c *Config) { c.BatchMessages = 10 })
	testutil.WaitFor(t, 10*time.Second, func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("outbox depth %d", d)
		}
		if dead, err := ob.DeadLetters(10); err != nil || len(dead) != 1 || dead[0].Seq != 7 {
			return fmt.Errorf("dead letters %+v (%v)", dead, err)
		}
		return nil
	})
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if stub.max != 2 {
		t.Errorf("at most %d batches in flight, want 2", stub.max)
	}
	for seq := uint64(1); seq <= 40; seq++ {
		if seq != 7 && stub.stored[seq] < 1 {
			t.Errorf("seq %d never stored", seq)
		}
	}
	if stub.batches < 5 {
		t.Errorf("%d batches for 40 messages of at most 10 with one refused", stub.batches)
	}
}

// Ensure that batches failing in the same round (in flight together when
// central went down) grow the backoff once, not once each: with two in
// flight the wait would otherwise double twice per outage round.
func TestForwarder_FailuresCountOncePerRound(t *testing.T) {
	f, err := New(Config{URL: "http://127.0.0.1:1", Token: "t", EdgeID: "e", BaseBackoff: time.Second, MaxBackoff: time.Hour, InFlight: 2},
		openOutbox(t), nil, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	down := outcome{label: resultRetry, err: errors.New("503")}
	for round := 1; round <= 3; round++ {
		var longest time.Duration
		for range 2 { // both batches of the round fail
			longest = max(longest, f.settle(down).d)
		}
		if f.failures != round {
			t.Fatalf("round %d: %d failures counted, want %d", round, f.failures, round)
		}
		if ceiling := time.Second << (round - 1); longest > ceiling {
			t.Fatalf("round %d: waits up to %v, beyond base·2^(n-1) = %v", round, longest, ceiling)
		}
		f.roundFailed = false // what sendLoop does once the round's pause is over
	}
	if f.settle(outcome{label: resultOK}); f.failures != 0 {
		t.Fatalf("%d failures after a success", f.failures)
	}
}
