package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgPool is a small pool of pgx connections. (pgxpool needs
// github.com/jackc/puddle/v2, which is not in go.mod; this is all the store
// needs of it.) At most cap(slots) connections exist. Idle ones are reused;
// one idle for longer than pgPingIdle is pinged first, so a server restart
// during a quiet spell costs no failed batch.
type pgPool struct {
	cfg   *pgx.ConnConfig
	slots chan struct{} // one token per connection in use or being dialled
	idle  chan pgIdle

	mu     sync.Mutex
	closed bool
}

type pgIdle struct {
	c     *pgx.Conn
	since time.Time
}

const pgPingIdle = 30 * time.Second

var errPoolClosed = errors.New("store is closed")

func newPGPool(cfg *pgx.ConnConfig, size int) *pgPool {
	return &pgPool{cfg: cfg, slots: make(chan struct{}, size), idle: make(chan pgIdle, size)}
}

// with runs fn on a pooled connection. An error after which the connection
// is closed (the server went away) wraps ErrUnavailable.
func (p *pgPool) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	err = fn(c)
	if err != nil && c.IsClosed() && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p.release(c)
	return err
}

func (p *pgPool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: wait for a database connection: %w", ErrUnavailable, ctx.Err())
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		<-p.slots
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, errPoolClosed)
	}
	for {
		select {
		case ic := <-p.idle:
			if time.Since(ic.since) > pgPingIdle && ic.c.Ping(ctx) != nil {
				ic.c.Close(context.Background())
				continue
			}
			return ic.c, nil
		default:
		}
		c, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			<-p.slots
			return nil, fmt.Errorf("%w: connect to postgres: %w", ErrUnavailable, err)
		}
		return c, nil
	}
}

func (p *pgPool) release(c *pgx.Conn) {
	defer func() { <-p.slots }()
	reusable := !c.IsClosed() && !c.PgConn().IsBusy() && c.PgConn().TxStatus() == 'I'
	p.mu.Lock()
	if reusable && !p.closed {
		p.idle <- pgIdle{c, time.Now()} // never blocks: idle ≤ slots
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// close closes the idle connections; connections in use close on release.
func (p *pgPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		select {
		case ic := <-p.idle:
			ic.c.Close(ctx)
		default:
			return
		}
	}
}
