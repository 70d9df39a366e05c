package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

// rosterCentral serves GET /v1/edge/roster with a list the test changes,
// counts the requests, and can hold them until released.
type rosterCentral struct {
	mu       sync.Mutex
	children []string
	names    map[string]string
	status   int           // answer with this status instead of the list when not 0
	hold     chan struct{} // when not nil, requests wait for it to close
	requests atomic.Int64
	URL      string
}

func serveRoster(t *testing.T, children ...string) *rosterCentral {
	rc := &rosterCentral{children: children}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != hearth.PathEdgeRoster {
			http.NotFound(w, r)
			return
		}
		rc.requests.Add(1)
		rc.mu.Lock()
		hold, status, list, names := rc.hold, rc.status, append([]string{}, rc.children...), rc.names
		rc.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		json.NewEncoder(w).Encode(hearth.RosterReply{Children: list, Names: names})
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

func (rc *rosterCentral) add(child string) {
	rc.mu.Lock()
	rc.children = append(rc.children, child)
	rc.mu.Unlock()
}

func (rc *rosterCentral) set(f func(rc *rosterCentral)) {
	rc.mu.Lock()
	f(rc)
	rc.mu.Unlock()
}

// newRoster returns a fresh roster (no cache) refreshed through a
// Forwarder on rc that is not running: only misses fetch.
func newRoster(t *testing.T, rc *rosterCentral) *Roster {
	t.Helper()
	r := OpenRoster(filepath.Join(t.TempDir(), "roster.json"), quiet)
	if _, err := New(Config{URL: rc.URL, Token: "tok", Timeout: 5 * time.Second}, openOutbox(t), r, prometheus.NewRegistry(), quiet); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitSize waits until the roster lists n children.
func waitSize(t *testing.T, r *Roster, n int) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if r.Size() != n {
			return fmt.Errorf("roster has %d children, want %d", r.Size(), n)
		}
		return nil
	})
}

// Ensure that without any roster from central (central down, no cache)
// every child is refused with an error wrapping hearth.ErrUnavailable, so
// phones keep their data and retry, and nothing is acked.
func TestRoster_Known_NoRosterIsUnavailable(t *testing.T) {
	rc := serveRoster(t, "kid")
	rc.set(func(rc *rosterCentral) { rc.status = http.StatusServiceUnavailable })
	r := newRoster(t, rc)
	ok, err := r.Known(context.Background(), "kid")
	if ok || !errors.Is(err, hearth.ErrUnavailable) {
		t.Fatalf("Known = %v, %v; want ErrUnavailable", ok, err)
	}
	if rc.requests.Load() != 1 {
		t.Fatalf("%d roster requests, want 1 (a refresh on the miss)", rc.requests.Load())
	}
	// Without a refresh hook at all, the same.
	bare := OpenRoster(filepath.Join(t.TempDir(), "roster.json"), quiet)
	if ok, err := bare.Known(context.Background(), "kid"); ok || !errors.Is(err, hearth.ErrUnavailable) {
		t.Fatalf("Known without refresh = %v, %v; want ErrUnavailable", ok, err)
	}
}

// Ensure that a miss fetches the roster at once, so a child added at
// central is accepted on its first try; that a second miss within the
// refresh gap is final without a request; and that a miss after the gap
// fetches again.
func TestRoster_Known_RefreshesOnMiss(t *testing.T) {
	rc := serveRoster(t, "kid-a")
	r := OpenRoster(filepath.Join(t.TempDir(), "roster.json"), quiet)
	runForwarder(t, openOutbox(t), rc.URL, "tok", r, nil)
	waitSize(t, r, 1) // the sync at start
	ctx := context.Background()
	before := rc.requests.Load()

	if ok, err := r.Known(ctx, "kid-a"); !ok || err != nil {
		t.Fatalf("listed child: %v, %v", ok, err)
	}
	if n := rc.requests.Load(); n != before {
		t.Fatalf("a listed child fetched the roster (%d requests, want %d)", n, before)
	}

	rc.add("kid-b")
	if ok, err := r.Known(ctx, "kid-b"); !ok || err != nil {
		t.Fatalf("child added at central: %v, %v; want accepted on the first try", ok, err)
	}
	if n := rc.requests.Load(); n != before+1 {
		t.Fatalf("%d roster requests, want %d", n, before+1)
	}

	rc.add("kid-c")
	for _, hash := range []string{"stranger", "kid-c"} {
		if ok, err := r.Known(ctx, hash); ok || err != nil {
			t.Fatalf("%s within the gap: %v, %v; want a final refusal", hash, ok, err)
		}
	}
	if n := rc.requests.Load(); n != before+1 {
		t.Fatalf("misses within the gap fetched the roster (%d requests, want %d)", n, before+1)
	}

	r.refreshMu.Lock()
	r.lastRefresh = time.Now().Add(-minRefreshGap) // the gap has passed
	r.refreshMu.Unlock()
	if ok, err := r.Known(ctx, "kid-c"); !ok || err != nil {
		t.Fatalf("kid-c after the gap: %v, %v", ok, err)
	}
	if n := rc.requests.Load(); n != before+2 {
		t.Fatalf("%d roster requests, want %d", n, before+2)
	}
}

// Ensure that concurrent misses share one refresh: they wait for it and
// all see its result.
func TestRoster_Known_OneRefreshInFlight(t *testing.T) {
	rc := serveRoster(t, "kid-a", "kid-new")
	hold := make(chan struct{})
	rc.set(func(rc *rosterCentral) { rc.hold = hold })
	r := newRoster(t, rc)
	const callers = 8
	var started atomic.Int64
	results := make(chan error, callers)
	for range callers {
		go func() {
			started.Add(1)
			ok, err := r.Known(context.Background(), "kid-new")
			if err == nil && !ok {
				err = errors.New("refused")
			}
			results <- err
		}()
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if started.Load() != callers || rc.requests.Load() != 1 {
			return fmt.Errorf("%d callers started, %d requests", started.Load(), rc.requests.Load())
		}
		return nil
	})
	close(hold)
	for range callers {
		if err := <-results; err != nil {
			t.Errorf("a caller got %v", err)
		}
	}
	if n := rc.requests.Load(); n != 1 {
		t.Fatalf("%d roster requests for concurrent misses, want 1", n)
	}
}

// Ensure that a failing refresh leaves the roster known before it as it
// was: a listed child is still accepted, a new one refused as unknown
// (not unavailable).
func TestRoster_Known_FailedRefreshKeepsRoster(t *testing.T) {
	rc := serveRoster(t, "kid-a")
	r := newRoster(t, rc)
	ctx := context.Background()
	if ok, err := r.Known(ctx, "kid-a"); !ok || err != nil {
		t.Fatalf("first check: %v, %v", ok, err)
	}
	rc.set(func(rc *rosterCentral) { rc.status = http.StatusBadGateway })
	r.refreshMu.Lock()
	r.lastRefresh = time.Time{}
	r.refreshMu.Unlock()
	if ok, err := r.Known(ctx, "kid-b"); ok || err != nil {
		t.Fatalf("miss with central failing: %v, %v; want unknown", ok, err)
	}
	if ok, err := r.Known(ctx, "kid-a"); !ok || err != nil {
		t.Fatalf("listed child after a failed refresh: %v, %v", ok, err)
	}
	if n := rc.requests.Load(); n != 2 {
		t.Fatalf("%d roster requests, want 2", n)
	}
}

// Ensure that the names central gives are kept, clipped, cached with the
// roster and read back after a restart, for the household page.
func TestRoster_NamesFromCentral_SurviveARestart(t *testing.T) {
	long := strings.Repeat("é", 100)
	rc := serveRoster(t, "kid-a", "kid-b")
	rc.set(func(rc *rosterCentral) {
		rc.names = map[string]string{"kid-a": "Alice", "kid-b": long, "stranger": "Eve"}
	})
	path := filepath.Join(t.TempDir(), "roster.json")
	r := OpenRoster(path, quiet)
	if _, err := New(Config{URL: rc.URL, Token: "tok", Timeout: 5 * time.Second}, openOutbox(t), r, prometheus.NewRegistry(), quiet); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Known(context.Background(), "kid-a"); !ok || err != nil {
		t.Fatalf("kid-a: %v %v", ok, err)
	}
	want := map[string]string{"kid-a": "Alice", "kid-b": strings.Repeat("é", maxNameRunes)}
	if got := r.Names(); !maps.Equal(got, want) {
		t.Fatalf("names %v, want %v (a name of a child not listed is dropped, a long one clipped)", got, want)
	}
	if got := OpenRoster(path, quiet).Names(); !maps.Equal(got, want) {
		t.Fatalf("names after reopening the cache: %v", got)
	}
}
