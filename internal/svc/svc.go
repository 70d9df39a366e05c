// Package svc holds what the mains share: logger setup and the systemd
// notify/watchdog protocol.
package svc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// NewLogger returns a slog logger at level ("debug", "info", "warn",
// "error") in format "text" or "json".
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// Ready tells systemd the service is up and keeps its watchdog fed until
// ctx ends. Without systemd (no NOTIFY_SOCKET) it does nothing.
func Ready(ctx context.Context, log *slog.Logger) {
	if ok, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		log.Warn("systemd notify failed", "err", err)
	} else if !ok {
		return
	}
	interval, err := sd.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
			}
		}
	}()
}

// Stopping tells systemd the service is shutting down.
func Stopping() { _, _ = sd.SdNotify(false, sd.SdNotifyStopping) }
