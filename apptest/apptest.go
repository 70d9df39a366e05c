// Package apptest runs end-to-end tests against the built binaries: real
// processes on loopback, real files, killed with SIGKILL where it matters.
package apptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built once for the whole package.
var binDir string

// buildBinaries builds the commands under test into a temporary directory.
// With HEARTH_APPTEST_GOARCH set (GOARM and GOMIPS taken from the
// environment as usual) it builds hearthd alone for linux/that architecture,
// and HEARTH_APPTEST_EXEC (e.g. qemu-arm-static) runs it: "make cross-test"
// runs the tests of hearthd alone that way (the crash test).
func buildBinaries() (string, error) {
	dir, err := os.MkdirTemp("", "hearth-apptest-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cmd/...")
	if arch := os.Getenv("HEARTH_APPTEST_GOARCH"); arch != "" {
		cmd = exec.Command("go", "build", "-trimpath", "-o", dir+"/", "../cmd/hearthd")
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
}

// Proc is a running binary whose JSON log lines are collected.
type Proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []map[string]any
	raw    strings.Builder
	exited chan struct{}
	err    error
}

// Start runs binary name with args and waits until it logs readyMsg.
func Start(t *testing.T, name, readyMsg string, args ...string) *Proc {
	t.Helper()
	p := StartNoWait(t, name, args...)
	if _, err := p.WaitLog(readyMsg, 15*time.Second); err != nil {
		t.Fatalf("%s did not get ready: %v\nlog:\n%s", name, err, p.Log())
	}
	return p
}

// StartNoWait runs binary name with args; its stdout and stderr are collected.
func StartNoWait(t *testing.T, name string, args ...string) *Proc {
	t.Helper()
	if run := strings.Fields(os.Getenv("HEARTH_APPTEST_EXEC")); len(run) > 0 {
		return StartCmd(t, exec.Command(run[0], append(append(run[1:], filepath.Join(binDir, name)), args...)...))
	}
	return StartCmd(t, exec.Command(filepath.Join(binDir, name), args...))
}

// StartCmd runs cmd, a binary of the build prepared with its own user or
// environment; its stdout and stderr are collected.
func StartCmd(t *testing.T, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{t: t, cmd: cmd, exited: make(chan struct{})}
	out, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.cmd.Stderr // one stream: stdout joins the collected stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", filepath.Base(cmd.Path), err)
	}
	go p.collect(out)
	t.Cleanup(func() { p.Kill() })
	return p
}

func (p *Proc) collect(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		p.mu.Lock()
		p.raw.WriteString(line + "\n")
		if m != nil {
			p.lines = append(p.lines, m)
		}
		p.mu.Unlock()
	}
	p.err = p.cmd.Wait()
	close(p.exited)
}

// WaitLog waits for a JSON log line whose msg is msg and returns it.
func (p *Proc) WaitLog(msg string, timeout time.Duration) (map[string]any, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if l["msg"] == msg {
				p.mu.Unlock()
				return l, nil
			}
		}
		p.mu.Unlock()
		select {
		case <-p.exited:
			return nil, fmt.Errorf("process exited (%v) before logging %q", p.err, msg)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no %q log line within %s", msg, timeout)
}

// Log returns everything the process wrote to stderr.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// Signal sends sig and, for SIGKILL, waits for the exit.
func (p *Proc) Signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-p.exited
	}
}

// Kill stops the process at once if it still runs.
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL) }

// Wait waits for the exit and returns its error (nil for exit 0).
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// Hearthd is a running edge daemon.
type Hearthd struct {
	*Proc
	URL     string // phones' base URL
	Admin   string // admin base URL
	DataDir string
}

// StartHearthd runs hearthd on free loopback ports with dataDir.
func StartHearthd(t *testing.T, dataDir string, args ...string) *Hearthd {
	t.Helper()
	base := []string{"--config", "", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--log-format", "json",
		// The test's directory may be on tmpfs (/tmp on many systems),
		// which hearthd refuses otherwise; daemon's tests cover that.
		"--allow-volatile-data-dir"}
	p := Start(t, "hearthd", "hearthd ready", append(base, args...)...)
	ready, _ := p.WaitLog("hearthd ready", time.Second)
	return &Hearthd{Proc: p, URL: "http://" + ready["listen"].(string), Admin: "http://" + ready["admin"].(string), DataDir: dataDir}
}
