package apptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/guardianai/hearth/ingest/ingesttest"
	"github.com/guardianai/hearth/internal/testutil"
)

// runDeadLetters runs `hearthd deadletters ARGS` against d's admin
// listener and returns stdout, stderr and the exit code.
func runDeadLetters(t *testing.T, d *Hearthd, args ...string) (string, string, int) {
	t.Helper()
	argv := append([]string{"deadletters"}, args...)
	argv = append(argv, "--config", "", "--admin-listen", strings.TrimPrefix(d.Admin, "http://"))
	cmd := exec.Command(filepath.Join(binDir, "hearthd"), argv...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run hearthd deadletters: %v", err)
	}
	return out.String(), errb.String(), 0
}

// Ensure the dead-letter round trip an operator does: data a household
// sent for a child central did not know yet (the edge ran standalone,
// then was pointed at central) ends in the dead letters as unknown_child;
// `hearthd deadletters list` shows them; once the child is added at
// central, `hearthd deadletters retry` sends them again and central
// stores them; a purge without a filter is refused with the reason.
func TestDeadLetters_RetryRoundTrip(t *testing.T) {
	const n = 6
	const child = "kid-added-late"
	dir := t.TempDir()
	standalone := StartHearthd(t, dir)
	conn := ingesttest.MustDial(t, ingesttest.Target{URL: standalone.URL}, "/ws/ingest/"+child+"/")
	conn.Expect("connection_established")
	base := time.Now().Add(-time.Hour)
	for i := 0; i < n; i++ {
		ts := base.Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339Nano)
		conn.Send(ingesttest.Frame("location", fmt.Sprintf(`{"timestamp":%q,"latitude":51.5,"longitude":-0.12}`, ts)))
		conn.ExpectAck("location")
	}
	conn.Close()
	standalone.Signal(syscall.SIGTERM)
	if err := standalone.Wait(15 * time.Second); err != nil {
		t.Fatal(err)
	}

	c := StartCentral(t, CentralSQLite(t))
	home, token := CentralAddHome(t, c.DB, "late")
	d := StartHearthd(t, dir, "--central-url", c.URL, "--central-token", token, "--forward-replay-jitter", "0s",
		"--forward-max-backoff", "500ms", "--edge-id", "apptest-edge", "--outbox-settle-delay", "50ms")
	testutil.WaitFor(t, 15*time.Second, func() error {
		if got := statusNumber(t, d, "dead_letters"); got != n {
			return fmt.Errorf("%v dead letters", got)
		}
		return nil
	})
	if byReason, _ := getStatus(t, d)["dead_letters_by_reason"].(map[string]any); byReason["unknown_child"] != float64(n) {
		t.Fatalf("dead_letters_by_reason %v", byReason)
	}

	out, errs, code := runDeadLetters(t, d, "list", "--json", "--reason", "unknown_child")
	var list struct {
		DeadLetters []struct {
			Code, Child, Type, Reason string
			Size                      int64
			ReceivedAt                time.Time `json:"received_at"`
		} `json:"dead_letters"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.DeadLetters) != n {
		t.Fatalf("list: exit %d, %s %s", code, out, errs)
	}
	if dl := list.DeadLetters[0]; dl.Code != "unknown_child" || !strings.HasPrefix(child, strings.TrimSuffix(dl.Child, "…")) || dl.Type != "location" ||
		!strings.Contains(dl.Reason, "unknown child") || dl.Size <= 0 || dl.ReceivedAt.IsZero() {
		t.Fatalf("dead letter %+v", dl)
	}
	if out, _, _ := runDeadLetters(t, d, "list"); !strings.Contains(out, "unknown_child") || !strings.Contains(out, "RECEIVED_AT") {
		t.Fatalf("list as text:\n%s", out)
	}
	if _, errs, code := runDeadLetters(t, d, "purge"); code == 0 || !strings.Contains(errs, "--all") {
		t.Fatalf("purge without a filter: exit %d, %s", code, errs)
	}

	CentralAddChild(t, c.DB, home, child)
	if out, errs, code := runDeadLetters(t, d, "retry", "--reason", "unknown_child"); code != 0 || !strings.Contains(out, fmt.Sprintf("%d dead letters put back", n)) {
		t.Fatalf("retry: exit %d, %s %s", code, out, errs)
	}
	testutil.WaitFor(t, 15*time.Second, func() error {
		if got := CentralStats(t, c.DB)["locations"]; got != n {
			return fmt.Errorf("central holds %d locations, want %d", got, n)
		}
		if dead := statusNumber(t, d, "dead_letters"); dead != 0 {
			return fmt.Errorf("%v dead letters", dead)
		}
		return nil
	})
}
