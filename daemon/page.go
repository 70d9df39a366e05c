package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/guardianai/hearth"
	"github.com/guardianai/hearth/config"
	"github.com/guardianai/hearth/forwarder"
	"github.com/guardianai/hearth/household"
	"github.com/guardianai/hearth/ingest"
	"github.com/guardianai/hearth/internal/admin"
	"github.com/guardianai/hearth/internal/svc"
	"github.com/valyala/fasthttp"
)

// PageConfig places the household's page (package household): its own
// listener, meant for the home network, apart from the admin listener,
// which stays on loopback.
type PageConfig struct {
	PageListen       string `yaml:"page_listen"`
	PagePassword     string `yaml:"page_password"`
	PagePasswordFile string `yaml:"page_password_file"`
	pagePasswordRead bool   // PagePassword came from PagePasswordFile
}

// PageCountsFile keeps the page's counts of the day across restarts.
const PageCountsFile = "page-counts.json"

// pageSaveInterval is how often the page's counts are written; a crash
// loses at most this much of the day's counts, never data.
const pageSaveInterval = 30 * time.Second

func (c *PageConfig) bindPage(b *config.Binder) {
	b.String(&c.PageListen, "page-listen", "address of the household's page (e.g. :8002); empty: no page")
	b.String(&c.PagePassword, "page-password", "the page's password (user hearth); prefer page_password_file")
	b.String(&c.PagePasswordFile, "page-password-file", "file holding the page's password (not readable by other users)")
}

// loadPagePassword reads page_password_file into PagePassword.
func (c *PageConfig) loadPagePassword() error {
	if c.PagePasswordFile == "" || c.pagePasswordRead {
		return nil
	}
	if c.PagePassword != "" {
		return errors.New("page_password and page_password_file are both set: keep only page_password_file")
	}
	pw, err := svc.ReadSecretFile("page_password_file", c.PagePasswordFile)
	if err != nil {
		return err
	}
	c.PagePassword, c.pagePasswordRead = pw, true
	return nil
}

func (c *PageConfig) validatePage() []error {
	if c.PageListen != "" && c.PagePassword == "" {
		return []error{errors.New("page_listen is set but the page has no password: set page_password_file (or HEARTH_PAGE_PASSWORD)")}
	}
	return nil
}

func (c *PageConfig) writePage(w io.Writer) {
	pw := "(none)"
	if c.PagePassword != "" {
		pw = "(set)"
	}
	fmt.Fprintf(w, "page_listen: %s\npage_password: %s\npage_password_file: %s\n", c.PageListen, pw, c.PagePasswordFile)
}

// householdPage is the page's server and the counts behind it.
type householdPage struct {
	tally *household.Tally
	srv   *fasthttp.Server
	ln    net.Listener
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once // stops it once: Shutdown may be called again
}

// newPage prepares the page when page_listen is set and returns the sink
// to hand to ingest: sink itself, or sink counting what it stored.
func (d *Daemon) newPage(sink ingest.Sink) (ingest.Sink, error) {
	if d.cfg.PageListen == "" {
		return sink, nil
	}
	tally, err := household.OpenTally(filepath.Join(d.cfg.DataDir, PageCountsFile), nil)
	if err != nil {
		return nil, err
	}
	p, err := household.New(household.Options{Password: d.cfg.PagePassword, Snapshot: d.pageSnapshot, Log: d.log,
		Retry: d.retryDeadLetters})
	if err != nil {
		return nil, err
	}
	srv := &fasthttp.Server{
		Name: "hearthd-page", Handler: p.Handler, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxRequestBodySize: 4 << 10, Concurrency: 64, NoDefaultServerHeader: true, Logger: admin.FasthttpLogger(d.log),
	}
	d.page = &householdPage{tally: tally, srv: srv}
	return countingSink{Sink: sink, tally: tally}, nil
}

// countingSink counts, per child and kind, the messages the sink stored.
type countingSink struct {
	ingest.Sink
	tally *household.Tally
}

// StoreAsync implements ingest.Sink.
func (s countingSink) StoreAsync(msgs []hearth.Message, done func(error)) {
	s.Sink.StoreAsync(msgs, func(err error) {
		if err == nil {
			s.tally.StoredMessages(msgs)
		}
		done(err)
	})
}

// startPage listens on page_listen and saves the counts now and then.
func (d *Daemon) startPage() error {
	if d.page == nil {
		return nil
	}
	ln, err := net.Listen("tcp", d.cfg.PageListen)
	if err != nil {
		return fmt.Errorf("listen for the household page: %w", err)
	}
	d.page.ln, d.page.stop, d.page.done = ln, make(chan struct{}), make(chan struct{})
	d.serving.Go("page", ln, d.page.srv.Serve)
	go d.page.saveLoop(d)
	return nil
}

func (p *householdPage) saveLoop(d *Daemon) {
	defer close(p.done)
	t := time.NewTicker(pageSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if err := p.tally.Save(); err != nil {
				d.log.Warn("household page: counts not saved; will retry", "err", err)
			}
		}
	}
}

// stopPage stops the page's listener and saves its counts.
func (d *Daemon) stopPage(ctx context.Context) error {
	if d.page == nil || d.page.ln == nil {
		return nil
	}
	var err error
	d.page.once.Do(func() {
		close(d.page.stop)
		<-d.page.done
		err = svc.IgnoreClosed(d.page.srv.ShutdownWithContext(ctx))
		svc.CloseListener(d.page.ln)
		err = errors.Join(err, d.page.tally.Save())
	})
	return err
}

// PageAddr is the household page's address (after Start; "" without one).
func (d *Daemon) PageAddr() string {
	if d.page == nil || d.page.ln == nil {
		return ""
	}
	return d.page.ln.Addr().String()
}

// refusedChild counts a refusal of a message naming a child hash for
// the page (ingest's refusal hook).
func (d *Daemon) refusedChild(child, reason string) {
	if d.page != nil && child != "" {
		d.page.tally.Refused(child, reason)
	}
}

// pageDeadLetters is how many dead letters the page lists.
const pageDeadLetters = 20

// pageSnapshot is what the page shows now.
func (d *Daemon) pageSnapshot() household.Snapshot {
	st := d.Status()
	s := household.Snapshot{
		Version: Version, Now: time.Now(), Connections: st.Connections, Children: d.page.tally.Today(),
		Backlog:   household.Backlog{Messages: st.OutboxDepth, Bytes: st.OutboxBytes, OldestAge: time.Duration(st.OutboxOldestAgeSeconds * float64(time.Second))},
		Link:      household.Link{State: linkState(st.ForwardState), Central: d.cfg.CentralURL, LastError: st.LastForwardError, LastErrorAt: timeOf(st.LastForwardErrorAt)},
		DeadTotal: st.DeadLetters,
	}
	if d.roster != nil {
		s.Names = d.roster.Names()
	}
	if st.DeadLetters > 0 {
		dead, err := d.outbox.DeadLetters(pageDeadLetters)
		if err != nil {
			d.log.Warn("household page: dead letters not read", "err", err)
		}
		for _, dl := range dead {
			s.DeadLetters = append(s.DeadLetters, household.DeadLetter{Child: dl.Msg.ChildHash, Kind: string(dl.Msg.Kind), Received: dl.Msg.ReceivedAt, Code: dl.Code, Reason: dl.Reason})
		}
	}
	return s
}

// linkState says the forwarder's state in the page's words.
func linkState(state string) string {
	switch forwarder.State(state) {
	case forwarder.StateOff:
		return household.LinkOff
	case forwarder.StateBackoff, forwarder.StateRefused:
		// Refused: central cannot read the batches; the page says the
		// link waits, with the error, and the operator has the details.
		return household.LinkWaiting
	case forwarder.StateUnauthorized:
		return household.LinkRefused
	}
	return household.LinkSending
}

// CreatePagePassword writes a new random password for the household page
// to file unless it exists, readable by root and group only (0640), and
// says whether it did. It is for the packages' install scripts, which run
// as root; an existing file — the household's password — is never
// replaced.
func CreatePagePassword(file, group string) (bool, error) {
	if _, err := os.Stat(file); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return false, fmt.Errorf("page password: group %s: %w", group, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return false, fmt.Errorf("page password: group %s has id %q", group, g.Gid)
		}
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return false, fmt.Errorf("page password: %w", err)
	}
	_, err = f.WriteString(newPagePassword() + "\n")
	if err == nil && gid >= 0 {
		err = f.Chown(-1, gid)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return false, fmt.Errorf("page password: %w", err)
	}
	return true, nil
}

// newPagePassword is 16 characters a person can read out and type on a
// phone (no 0/O, 1/l/I): about 80 bits.
func newPagePassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// timeOf is *t, or the zero time for nil.
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
