package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/guardianai/hearth/loadgen"
	"github.com/guardianai/hearth/loadgen/loadgentest"
)

// Ensure that flags map onto the configuration, and --messages alone
// lifts the time limit.
func TestParseFlags(t *testing.T) {
	cfg, opt, err := parseFlags([]string{"--url", "http://h:1", "--phones", "3", "--mode", "ws-auth", "--messages", "7",
		"--children", "a,b", "--mix", "location", "--pipeline", "4", "--json", "--ack-log", "x.log", "--idle", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URL != "http://h:1" || cfg.Phones != 3 || cfg.Mode != loadgen.ModeWSAuth || cfg.Messages != 7 || cfg.Duration != 0 ||
		strings.Join(cfg.Children, "|") != "a|b" || cfg.Mix != loadgen.MixLocation || cfg.Pipeline != 4 || cfg.Idle != 2 ||
		!opt.json || opt.ackLog != "x.log" {
		t.Errorf("parsed %+v %+v", cfg, opt)
	}
	cfg, _, err = parseFlags([]string{"--messages", "7", "--duration", "2s"})
	if err != nil || cfg.Duration != 2*time.Second {
		t.Errorf("--messages with --duration: %v, %v", cfg.Duration, err)
	}
	cfg, _, err = parseFlags(nil)
	if err != nil || cfg.Duration != 10*time.Second || cfg.Phones != 50 || cfg.Mode != loadgen.ModeWS || cfg.Mix != loadgen.MixMixed {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{{"--mode", "smoke"}, {"--pipeline", "0"}, {"--mix", "x"}, {"extra"}, {"--children", "a,,b"}} {
		if _, _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) = nil error", bad)
		}
	}
}

// Ensure that a run prints its summary as JSON and appends the ack log.
func TestRun_JSON(t *testing.T) {
	srv := loadgentest.Start(t, loadgentest.Options{})
	ackLog := filepath.Join(t.TempDir(), "acks.log")
	os.WriteFile(ackLog, []byte("earlier\n"), 0o644)
	var out bytes.Buffer
	err := run(context.Background(), []string{"--url", srv.URL, "--phones", "2", "--messages", "5", "--json", "--ack-log", ackLog}, &out)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var s map[string]any
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	for _, k := range []string{"mode", "phones", "acked", "errors", "top_errors", "refused", "reconnects", "msgs_per_sec", "p50_ms", "p99_ms", "max_ms", "elapsed_s"} {
		if _, ok := s[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out.String())
		}
	}
	if s["acked"] != 10.0 || s["mode"] != "ws" {
		t.Errorf("acked %v mode %v, want 10 ws", s["acked"], s["mode"])
	}
	data, _ := os.ReadFile(ackLog)
	if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) != 11 || lines[0] != "earlier" {
		t.Errorf("ack log has %d lines, want 11 starting with the earlier one", len(lines))
	}
}

// Ensure that the text summary names the figures and a run with nothing
// acked fails after printing it.
func TestRun_NothingAcked(t *testing.T) {
	srv := loadgentest.Start(t, loadgentest.Options{Children: []string{"known"}})
	var out bytes.Buffer
	err := run(context.Background(), []string{"--url", srv.URL, "--phones", "1", "--messages", "1", "--children", "other"}, &out)
	if !errors.Is(err, loadgen.ErrNothingAcked) {
		t.Errorf("run = %v, want ErrNothingAcked", err)
	}
	for _, want := range []string{"acked      0", "msgs/s", "p99", "refused 1", "handshake HTTP 403"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
