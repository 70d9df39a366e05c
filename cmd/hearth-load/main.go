// Command hearth-load plays many phones speaking the seed device protocol
// against hearthd or hearth-central and prints acked msgs/s and ack latency;
// `hearth-load edges` plays a fleet of edges sending batches to central.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/guardianai/hearth/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "hearth-load:", err)
		stop()
		os.Exit(1)
	}
}

// options are the flags that are not part of loadgen.Config.
type options struct {
	json   bool
	ackLog string
}

// run parses args, runs the load, prints the summary to stdout and returns
// an error when nothing was measured.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "edges" {
		return runEdges(ctx, args[1:], stdout)
	}
	cfg, opt, err := parseFlags(args)
	if err != nil {
		return err
	}
	if opt.ackLog != "" {
		f, err := os.OpenFile(opt.ackLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open ack log: %w", err)
		}
		defer f.Close()
		cfg.AckLog = f
	}
	s, err := loadgen.Run(ctx, cfg)
	if s != nil {
		if perr := writeSummary(stdout, s, opt.json); perr != nil {
			return perr
		}
	}
	if err != nil {
		return err
	}
	return s.Err()
}

func writeSummary(w io.Writer, s *loadgen.Summary, asJSON bool) error {
	if asJSON {
		return s.WriteJSON(w)
	}
	return s.WriteText(w)
}

func parseFlags(args []string) (loadgen.Config, options, error) {
	cfg, opt := loadgen.DefaultConfig(), options{}
	fs := flag.NewFlagSet("hearth-load", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "server base URL (http(s):// or ws(s)://)")
	fs.IntVar(&cfg.Phones, "phones", cfg.Phones, "number of phones")
	mode := fs.String("mode", string(cfg.Mode), "transport: ws, ws-auth or http")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long phones send and idle connections are held")
	fs.IntVar(&cfg.Messages, "messages", 0, "messages per phone (without --duration: no time limit)")
	children := fs.String("children", "", "child hashes given to the phones round-robin (default: load-<n> for phone n)")
	mix := fs.String("mix", string(cfg.Mix), "data sent: location, screen_time, site_access or mixed")
	fs.IntVar(&cfg.Pipeline, "pipeline", cfg.Pipeline, "WebSocket frames in flight per phone (1 waits for each ack, as seed phones do)")
	fs.BoolVar(&opt.json, "json", false, "print the summary as one JSON object")
	fs.StringVar(&opt.ackLog, "ack-log", "", "append \"<child>\\t<type>\\t<key>\" per message once it is acked")
	fs.IntVar(&cfg.Idle, "idle", 0, "idle WebSockets to open and hold for --duration")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "longest wait for one reply, handshake or request")
	fs.DurationVar(&cfg.ReconnectTimeout, "reconnect-timeout", cfg.ReconnectTimeout, "a phone that cannot connect for this long gives up")
	if err := fs.Parse(args); err != nil {
		return cfg, opt, err
	}
	if fs.NArg() > 0 {
		return cfg, opt, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Mode, cfg.Mix = loadgen.Mode(*mode), loadgen.Mix(*mix)
	if *children != "" {
		cfg.Children = strings.Split(*children, ",")
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if cfg.Messages > 0 && !durationSet {
		cfg.Duration = 0
	}
	return cfg, opt, cfg.Validate()
}
