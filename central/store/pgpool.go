package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgPool is the store's pgxpool with the waits and lifetimes of Options.
// pgxpool closes connections past their lifetime or idle too long, pings
// one idle for more than a second before handing it out (a server restart
// during a quiet spell costs no failed batch) and checks the idle ones in
// the background.
type pgPool struct {
	p      *pgxpool.Pool
	wait   time.Duration // longest wait for a connection before ErrBusy
	closed atomic.Bool
}

// ErrBusy means every database connection stayed in use for longer than
// Options.ConnWait: the caller sheds the request (central answers 503 +
// Retry-After) rather than queue it without bound. It wraps
// ErrUnavailable, so code that only knows "retry later" still does so.
var ErrBusy = fmt.Errorf("%w: every database connection is in use", ErrUnavailable)

var errPoolClosed = errors.New("store is closed")

// newPGPoolOpts opens a pool as o says. pgxpool dials lazily, so this
// never touches the server.
func newPGPoolOpts(cfg *pgx.ConnConfig, o Options) *pgPool {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		panic("BUG: pgxpool rejects its own defaults: " + err.Error())
	}
	pc.ConnConfig = cfg
	pc.MaxConns = int32(o.MaxConns)
	pc.MinConns = 0
	pc.MaxConnLifetime = o.ConnLifetime
	pc.MaxConnLifetimeJitter = o.ConnLifetime / 10 // replicas started together do not all redial at once
	pc.MaxConnIdleTime = o.ConnIdleTime
	pc.HealthCheckPeriod = o.HealthCheckPeriod
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		panic("BUG: pgxpool rejects a checked configuration: " + err.Error())
	}
	return &pgPool{p: p, wait: o.ConnWait}
}

// with runs fn on a pooled connection. A wait for one longer than the
// pool's wait is ErrBusy; an error after which the connection is closed
// (the server went away) wraps ErrUnavailable.
func (p *pgPool) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release() // pgxpool destroys a connection left closed, busy or in a transaction
	err = fn(c.Conn())
	if err != nil && c.Conn().IsClosed() && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (p *pgPool) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	wctx, cancel := context.WithTimeoutCause(ctx, p.wait, ErrBusy)
	defer cancel()
	c, err := p.p.Acquire(wctx)
	switch {
	case err == nil:
		return c, nil
	case p.closed.Load():
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, errPoolClosed)
	case ctx.Err() == nil && context.Cause(wctx) == ErrBusy:
		return nil, fmt.Errorf("%w (waited %s)", ErrBusy, p.wait)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: wait for a database connection: %w", ErrUnavailable, ctx.Err())
	}
	return nil, fmt.Errorf("%w: connect to postgres: %w", ErrUnavailable, err)
}

// close closes the pool; it waits for connections in use to be released.
func (p *pgPool) close() {
	p.closed.Store(true)
	p.p.Close()
}

// PoolStats is a snapshot of a PostgreSQL connection pool, for metrics.
type PoolStats struct {
	MaxConns, TotalConns, IdleConns, AcquiredConns, ConstructingConns int32

	AcquireCount, EmptyAcquireCount, CanceledAcquireCount int64
	AcquireWait                                           time.Duration // total wait of acquires that had to wait or dial
	NewConns, LifetimeClosed, IdleClosed                  int64
}

func (p *pgPool) stats() PoolStats {
	s := p.p.Stat()
	return PoolStats{
		MaxConns: s.MaxConns(), TotalConns: s.TotalConns(), IdleConns: s.IdleConns(),
		AcquiredConns: s.AcquiredConns(), ConstructingConns: s.ConstructingConns(),
		AcquireCount: s.AcquireCount(), EmptyAcquireCount: s.EmptyAcquireCount(),
		CanceledAcquireCount: s.CanceledAcquireCount(), AcquireWait: s.EmptyAcquireWaitTime(),
		NewConns: s.NewConnsCount(), LifetimeClosed: s.MaxLifetimeDestroyCount(), IdleClosed: s.MaxIdleDestroyCount(),
	}
}

// Pooled is a store with a connection pool whose state can be measured.
type Pooled interface {
	PoolStats() PoolStats
}

// PoolStats returns the state of the store's connection pool.
func (s *Postgres) PoolStats() PoolStats { return s.pool.stats() }
