package forwarder

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/guardianai/hearth/outbox"
	"github.com/prometheus/client_golang/prometheus"
)

// poisonProxy stands in front of a real central and answers 500 for any
// batch holding marker, as a central with a bug that one payload trips
// would; every other batch goes through to central.
func poisonProxy(t *testing.T, centralURL, marker string) (url string, poisoned *atomic.Int64) {
	poisoned = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Errorf("batch not gzip: %v", err)
			return
		}
		raw, _ := io.ReadAll(zr)
		if bytes.Contains(raw, []byte(marker)) {
			poisoned.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":"internal error; retry later"}`)
			return
		}
		req, _ := http.NewRequest(r.Method, centralURL+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, poisoned
}

// Ensure that a message central fails on (500) amid 1,000 good ones is
// found by bisection and ends as the one dead letter, with central's
// answer as the reason, while the 999 others are stored.
func TestForwarder_Run_PoisonMessageFoundByBisection(t *testing.T) {
	tc := startCentral(t, nil)
	ob := openOutbox(t)
	msgs := locations(tc.Child, 0, 1000)
	msgs[617].Data = []byte(`{"timestamp":"` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `","latitude":13.37,"longitude":-0.12}`)
	appendMsgs(t, ob, msgs...)
	url, poisoned := poisonProxy(t, tc.URL, `"latitude":13.37`)
	f := runForwarder(t, ob, url, tc.Token, nil, func(c *Config) {
		c.BatchMessages = 200
		c.BaseBackoff, c.MaxBackoff = time.Millisecond, 20*time.Millisecond
	})
	testutil.WaitFor(t, 60*time.Second, delivered(ob, tc, 999))
	dead := waitDead(t, ob, 1)
	if len(dead) != 1 || dead[0].Code != outbox.DeadPoison || !strings.Contains(dead[0].Reason, "internal error; retry later") ||
		!strings.Contains(string(dead[0].Msg.Data), "13.37") {
		t.Fatalf("dead letters %+v", dead)
	}
	if n := poisoned.Load(); n < bisectAfter+poisonStrikes {
		t.Fatalf("central failed %d times: the message was moved before it failed alone %d times", n, poisonStrikes)
	}
	f.expectMetric(t, "hearth_forward_dead_lettered_total", "poison", func(v float64) bool { return v == 1 })
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := f.Status(); st.LastError != "" || st.LastErrorAt.IsZero() {
			return fmt.Errorf("status %+v: want the error cleared and its time kept", st)
		}
		return nil
	})
}

// Ensure that while central fails every batch (it is down, not one
// message) bisection moves nothing to the dead letters, and the backlog
// is delivered once central is back.
func TestForwarder_Run_CentralFailingEverywhereDeadLettersNothing(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	fc := &fakeCentral{answers: []func(http.ResponseWriter, []uint64){func(w http.ResponseWriter, seqs []uint64) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":"internal error; retry later"}`)
			return
		}
		allOK(w, seqs)
	}}}
	ob := openOutbox(t)
	appendMsgs(t, ob, locations("kid", 0, 8)...)
	runForwarder(t, ob, fc.serve(t), "tok", nil, func(c *Config) {
		c.BaseBackoff, c.MaxBackoff = time.Millisecond, 5*time.Millisecond
	})
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n := fc.calls(); n < 3*(bisectAfter+poisonStrikes) {
			return fmt.Errorf("%d batches", n)
		}
		return nil
	})
	failing.Store(false)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("depth %d", d)
		}
		return nil
	})
	if d := ob.Stats().DeadLetters; d != 0 {
		t.Fatalf("%d dead letters while central failed on everything", d)
	}
}

// Ensure that a malformed message amid 1,000 good ones is rejected by
// central alone (a 200 with its reason, not a 400 for the batch): one
// dead letter with central's reason, 999 rows.
func TestForwarder_Run_MalformedMessageRejectedAlone(t *testing.T) {
	tc := startCentral(t, nil)
	ob := openOutbox(t)
	msgs := locations(tc.Child, 0, 1000)
	// The stored fragment ends with the data: this one adds a member
	// central cannot read, while the batch stays valid JSON.
	msgs[321].Data = append(msgs[321].Data[:len(msgs[321].Data):len(msgs[321].Data)], `,"child_hash":5`...)
	appendMsgs(t, ob, msgs...)
	f := runForwarder(t, ob, tc.URL, tc.Token, nil, nil)
	testutil.WaitFor(t, 30*time.Second, delivered(ob, tc, 999))
	dead := waitDead(t, ob, 1)
	if len(dead) != 1 || dead[0].Code != hearth.CodeInvalid || !strings.Contains(dead[0].Reason, "child_hash must not be a JSON number") {
		t.Fatalf("dead letters %+v", dead)
	}
	f.expectMetric(t, "hearth_forward_batches_total", "refused", func(v float64) bool { return v == 0 })
	f.expectMetric(t, "hearth_forward_dead_lettered_total", "invalid", func(v float64) bool { return v == 1 })
}

// Ensure that a 400 of scope batch stops forwarding in state refused,
// alerts (metric, status) and moves nothing to the dead letters; the
// batch goes through once central takes it.
func TestForwarder_Run_BatchScope400DeadLettersNothing(t *testing.T) {
	refuse := func(w http.ResponseWriter, _ []uint64) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"body: is not valid JSON","scope":"batch"}`)
	}
	var ok atomic.Bool
	fc := &fakeCentral{answers: []func(http.ResponseWriter, []uint64){func(w http.ResponseWriter, seqs []uint64) {
		if ok.Load() {
			allOK(w, seqs)
			return
		}
		refuse(w, seqs)
	}}}
	ob := openOutbox(t)
	appendMsgs(t, ob, locations("kid", 0, 5)...)
	f := runForwarder(t, ob, fc.serve(t), "tok", nil, func(c *Config) { c.MaxBackoff = 50 * time.Millisecond })
	testutil.WaitFor(t, 5*time.Second, func() error {
		if st := f.Status(); st.State != StateRefused || !strings.Contains(st.LastError, "400") || st.NextRetryAt.IsZero() {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	f.expectMetric(t, "hearth_forward_refused", "", func(v float64) bool { return v == 1 })
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := fc.calls(); n < 3 {
			return fmt.Errorf("%d tries", n)
		}
		return nil
	})
	fc.mu.Lock()
	for _, seqs := range fc.seqs {
		if len(seqs) != 5 {
			t.Errorf("a refused batch was split: %v", fc.seqs)
		}
	}
	fc.mu.Unlock()
	if d := ob.Stats().DeadLetters; d != 0 {
		t.Fatalf("%d dead letters after 400s of scope batch", d)
	}
	ok.Store(true)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if d := ob.Stats().Depth; d != 0 {
			return fmt.Errorf("depth %d", d)
		}
		return nil
	})
	f.expectMetric(t, "hearth_forward_refused", "", func(v float64) bool { return v == 0 })
	if st := f.Status(); st.LastError != "" {
		t.Fatalf("last error %q kept after success", st.LastError)
	}
}

// Ensure that every request names the dead letters the edge holds
// (Hearth-Dead-Letters), for central's console.
func TestForwarder_Run_SendsDeadLetterCount(t *testing.T) {
	ob := openOutbox(t)
	appendMsgs(t, ob, locations("kid", 0, 3)...)
	if err := ob.DeadLetter(1, outbox.DeadReason("unknown_child", "unknown child")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get(hearth.HeaderDeadLetters):
		default:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	runForwarder(t, ob, srv.URL, "tok", nil, nil)
	select {
	case v := <-got:
		if v != "1" {
			t.Fatalf("%s: %q, want 1", hearth.HeaderDeadLetters, v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no request")
	}
}

// Ensure that the log line of a dead letter names the child (shortened)
// and the type, with central's code.
func TestForwarder_Run_DeadLetterLogNamesChildAndType(t *testing.T) {
	tc := startCentral(t, nil)
	ob := openOutbox(t)
	appendMsgs(t, ob, location("no-such-child-0123456789", 1))
	var logs testutil.SyncBuffer
	f, err := New(Config{URL: tc.URL, Token: tc.Token, EdgeID: "e", Poll: 10 * time.Millisecond}, ob, nil, prometheus.NewRegistry(),
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testutil.WaitFor(t, 5*time.Second, func() error {
		line := logs.String()
		for _, want := range []string{"moved to the dead letters", "child=no-suc…", "type=location", "code=unknown_child"} {
			if !strings.Contains(line, want) {
				return fmt.Errorf("log lacks %q:\n%s", want, line)
			}
		}
		if strings.Contains(line, "no-such-child-0123456789") {
			return fmt.Errorf("log names the whole child hash:\n%s", line)
		}
		return nil
	})
}
