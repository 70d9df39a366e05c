package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/guardianai/hearth/loadgen"
)

// runEdges is `hearth-load edges`: a fleet of simulated edges, one per
// line "<home token> <child hash>" of --creds, sending batches to central
// as the forwarder does (loadgen.EdgeConfig).
func runEdges(ctx context.Context, args []string, stdout io.Writer) error {
	cfg := loadgen.EdgeConfig{Rate: 2, BatchMax: 500, Duration: time.Minute, Timeout: 30 * time.Second, Poll: 5 * time.Second}
	fs := flag.NewFlagSet("hearth-load edges", flag.ContinueOnError)
	urls := fs.String("urls", "http://127.0.0.1:8080", "central replicas' base URLs, comma-separated (an edge tries the next on a connection error)")
	creds := fs.String("creds", "", `file of one edge per line: "<home token> <child hash>" (hearth-central home add, child add)`)
	ackLog := fs.String("ack-log", "", `append "<child>\t<timestamp>" per acked message to this file`)
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "messages each edge makes per second")
	fs.IntVar(&cfg.BatchMax, "batch", cfg.BatchMax, "messages per batch at most")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long edges make messages (then they drain their queues)")
	fs.DurationVar(&cfg.Poll, "poll", cfg.Poll, "an edge's wait when its queue is empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.URLs = strings.Split(*urls, ",")
	var err error
	if cfg.Edges, err = readCreds(*creds); err != nil {
		return err
	}
	if *ackLog != "" {
		f, err := os.OpenFile(*ackLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open ack log: %w", err)
		}
		defer f.Close()
		cfg.AckLog = f
	}
	start := time.Now()
	s := loadgen.RunEdges(ctx, cfg)
	el := time.Since(start)
	fmt.Fprintf(stdout, "edges %d, made %d, acked %d (%.0f msgs/s), rejected %d; batches %d, p50 %s p99 %s max %s; refused %v; requests without answer %d; drained %s after the last message was made\n",
		len(cfg.Edges), s.Made, s.Acked, float64(s.Acked)/el.Seconds(), s.Rejected, s.Batches.Count(), s.Batches.Quantile(0.5),
		s.Batches.Quantile(0.99), s.Batches.Max(), s.Refused, s.Errors, s.Drained.Round(time.Millisecond))
	if s.Acked != s.Made {
		return fmt.Errorf("%d of %d messages not acked", s.Made-s.Acked, s.Made)
	}
	return nil
}

func readCreds(path string) ([]loadgen.EdgeCred, error) {
	if path == "" {
		return nil, fmt.Errorf("--creds: name the file of edges")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []loadgen.EdgeCred
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		tok, child, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		out = append(out, loadgen.EdgeCred{Token: tok, Child: strings.TrimSpace(child)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no edges", path)
	}
	return out, sc.Err()
}
