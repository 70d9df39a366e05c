package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/internal/svc"
)

// serve runs the server until SIGTERM or SIGINT; SIGHUP reloads the TLS
// certificate.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("serve", "serve [flags]", stderr, true)
	check := c.flags().Bool("check-config", false, "validate the configuration (and read the token and certificate files) and exit")
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("serve takes no arguments, got %q", rest)
	}
	cfg := c.cfg
	cfg.Version = version
	if err := cfg.LoadSecrets(); err != nil {
		return fmt.Errorf("invalid configuration (%s):\n%w", c.fileName(), err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration (%s):\n%w", c.fileName(), err)
	}
	if err := central.CheckTLS(cfg); err != nil {
		return fmt.Errorf("invalid configuration (%s):\n%w", c.fileName(), err)
	}
	if *check {
		fmt.Fprintf(stdout, "configuration ok (%s)\n", c.fileName())
		cfg.Write(stdout)
		return nil
	}
	if err := checkOwner(c); err != nil {
		return err
	}
	log, err := svc.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Taken from now on, so a SIGHUP while starting does not kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

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
	go reloadOnHangup(ctx, hup, srv)
	return svc.ServeUntilDone(ctx, log, "hearth-central", cfg.ShutdownTimeout, srv.Shutdown)
}

// reloadOnHangup reloads the TLS certificate on every SIGHUP until ctx
// ends; the server logs the outcome.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, srv *central.Server) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = srv.ReloadTLS() // logged; the previous certificate stays on failure
		}
	}
}
