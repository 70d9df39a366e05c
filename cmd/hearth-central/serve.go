package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/internal/svc"
)

// serve runs the server until SIGTERM or SIGINT.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("serve", "serve [flags]", stderr, true)
	check := c.flags().Bool("check-config", false, "validate the configuration and exit")
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("serve takes no arguments, got %q", rest)
	}
	cfg := c.cfg
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration (%s):\n%w", c.fileName(), err)
	}
	if *check {
		fmt.Fprintf(stdout, "configuration ok (%s)\n", c.fileName())
		cfg.Write(stdout)
		return nil
	}
	log, err := svc.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	octx, cancel := context.WithTimeout(ctx, time.Minute)
	srv, err := central.Open(octx, cfg, log)
	cancel()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		_ = srv.Shutdown(context.Background())
		return err
	}
	return svc.ServeUntilDone(ctx, log, "hearth-central", cfg.ShutdownTimeout, srv.Shutdown)
}
