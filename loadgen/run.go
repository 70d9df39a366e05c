package loadgen

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// Run opens cfg.Idle idle WebSockets, then plays cfg.Phones phones until
// each has sent cfg.Messages or cfg.Duration has passed, waits for the
// replies in flight (each at most cfg.Timeout), and returns what it
// measured. Cancelling ctx stops everything at once; the messages then
// in flight count as unacked.
//
// The error is only for a configuration that cannot run or an ack log that
// could not be written; check Summary.Err for a run that measured nothing.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, _ := parseTarget(cfg.URL)
	acks := newAckLog(cfg.AckLog)

	var idle *idleSet
	if cfg.Idle > 0 {
		idle = openIdle(ctx, &cfg, t, cfg.Idle)
	}
	start := time.Now()
	sendCtx, cancel := context.WithCancel(ctx)
	if cfg.Duration > 0 {
		sendCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	phones := runPhones(ctx, sendCtx, &cfg, t, acks)
	elapsed := time.Since(start)
	if idle != nil && cfg.Duration > 0 {
		<-sendCtx.Done() // hold the idle connections for the whole duration
		if cfg.Phones == 0 {
			elapsed = time.Since(start)
		}
	}

	var total stats
	for _, p := range phones {
		total.merge(&p.st)
	}
	s := newSummary(&cfg, &total, elapsed)
	if idle != nil {
		idle.close()
		s.IdleOpen, s.IdleFailed, s.IdleDropped = len(idle.conns), idle.failed, idle.dropped.Load()
		total.merge(&idle.st)
		s.TopErrors = top(total.reasons, topReasons)
	}
	if err := acks.close(); err != nil {
		return s, err
	}
	return s, nil
}

// runPhones plays the phones and returns them once all have finished.
func runPhones(ctx, sendCtx context.Context, cfg *Config, t target, acks *ackLog) []*phone {
	clk := newClock()
	run := strconv.FormatInt(time.Now().UnixMicro(), 36)
	dialer := &websocket.Dialer{ReadBufferSize: 4096, WriteBufferSize: 4096, HandshakeTimeout: cfg.Timeout}
	var hc *fasthttp.HostClient
	if cfg.Mode == ModeHTTP {
		hc = &fasthttp.HostClient{
			Addr: t.addr, IsTLS: t.tls, MaxConns: cfg.Phones,
			ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
			NoDefaultUserAgentHeader: true,
		}
	}
	phones := make([]*phone, cfg.Phones)
	var wg sync.WaitGroup
	for i := range phones {
		child := cfg.child(i)
		childJSON, _ := json.Marshal(child)
		p := &phone{
			cfg: cfg, t: t, child: child, childJSON: childJSON,
			gen:  &generator{phone: i + 1, run: run, mix: cfg.Mix, clock: clk},
			acks: acks, dialer: dialer, http: hc,
		}
		phones[i] = p
		wg.Go(func() {
			if cfg.Mode == ModeHTTP {
				p.runHTTP(ctx, sendCtx)
			} else {
				p.runWS(ctx, sendCtx)
			}
		})
	}
	wg.Wait()
	return phones
}
