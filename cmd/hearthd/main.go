// Command hearthd is the hearth edge daemon: it takes data from the family's
// phones and keeps every acknowledged message on disk until it is forwarded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/daemon"
	"github.com/guardianai/hearth/internal/svc"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "hearthd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "page-password" {
		return pagePassword(args[1:])
	}
	if len(args) > 0 && args[0] == "deadletters" {
		return deadLetters(args[1:], os.Stdout)
	}
	cfg := daemon.DefaultConfig()
	b := config.NewBinder("hearthd", os.Stderr)
	cfg.Bind(b)
	check := b.FlagSet().Bool("check-config", false, "validate the configuration, say which file was read and what it does, and exit")
	showVersion := b.FlagSet().Bool("version", false, "print the version and exit")
	file, err := b.Load(&cfg, args, "/etc/hearth/hearthd.yaml")
	if err != nil {
		return err
	}
	if *showVersion {
		fmt.Printf("hearthd %s (%s, %s/%s)\n", daemon.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	if err := cfg.LoadSecrets(); err != nil {
		return fmt.Errorf("invalid configuration (%s):\n%w", fileName(file), err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration (%s):\n%w", fileName(file), err)
	}
	if *check {
		cfg.WriteEffective(os.Stdout, file)
		return nil
	}
	log, err := svc.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	d, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	if err := d.Start(); err != nil {
		_ = d.Shutdown(context.Background())
		return err
	}
	return svc.ServeUntilDone(ctx, log, "hearthd", cfg.ShutdownTimeout, d.Shutdown)
}

// fileName names the configuration file read, for messages.
func fileName(file string) string {
	if file == "" {
		return "no configuration file read"
	}
	return file
}

// pagePassword prints the household page's password, as configured, so a
// household can log in (user "hearth").
func pagePassword(args []string) error {
	cfg := daemon.DefaultConfig()
	b := config.NewBinder("hearthd page-password", os.Stderr)
	cfg.Bind(b)
	file, err := b.Load(&cfg, args, "/etc/hearth/hearthd.yaml")
	if err != nil {
		return err
	}
	if err := cfg.LoadSecrets(); err != nil {
		return fmt.Errorf("page password (%s): %w", fileName(file), err)
	}
	if cfg.PagePassword == "" {
		return fmt.Errorf("the household page has no password (%s): set page_password_file", fileName(file))
	}
	where := "off: set page_listen to open it"
	if cfg.PageListen != "" {
		addr := cfg.PageListen
		if strings.HasPrefix(addr, ":") {
			addr = "<this box's address>" + addr
		}
		where = "http://" + addr + "/"
	}
	fmt.Printf("user: hearth\npassword: %s\npage: %s\n", cfg.PagePassword, where)
	return nil
}
