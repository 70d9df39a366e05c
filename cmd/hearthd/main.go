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
// household can log in (user "hearth"). With --create, a configured
// page_password_file that does not exist yet is created with a new random
// password (the packages' install scripts do this).
func pagePassword(args []string) error {
	cfg := daemon.DefaultConfig()
	b := config.NewBinder("hearthd page-password", os.Stderr)
	cfg.Bind(b)
	create := b.FlagSet().Bool("create", false, "create page_password_file with a new random password when it does not exist (root; group hearth)")
	file, err := b.Load(&cfg, args, "/etc/hearth/hearthd.yaml")
	if err != nil {
		return err
	}
	if *create && cfg.PagePasswordFile != "" {
		made, err := daemon.CreatePagePassword(cfg.PagePasswordFile, "hearth")
		if err != nil {
			return err
		}
		if made {
			fmt.Printf("created %s with a new password for the household page\n", cfg.PagePasswordFile)
		}
	}
	if err := cfg.LoadSecrets(); err != nil {
		return fmt.Errorf("page password (%s): %w", fileName(file), err)
	}
	if cfg.PagePassword == "" {
		return fmt.Errorf("the household page has no password (%s): set page_password_file", fileName(file))
	}
	fmt.Printf("the household page: %s\nuser: hearth\npassword: %s\n", pageWhere(cfg.PageListen), cfg.PagePassword)
	return nil
}

// pageWhere says where the household page is, for people.
func pageWhere(listen string) string {
	switch {
	case listen == "":
		return "off (set page_listen to open it)"
	case strings.HasPrefix(listen, ":"):
		return "http://<this box's address>" + listen + "/"
	}
	return "http://" + listen + "/"
}
