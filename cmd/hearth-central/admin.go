package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store"
)

// adminTimeout bounds one admin command's database work.
const adminTimeout = 2 * time.Minute

// HomeJSON is one home in `home list --json`.
type HomeJSON struct {
	HomeID             string     `json:"home_id"`
	Name               string     `json:"name"`
	Children           int        `json:"children"`
	ClockOffsetSeconds float64    `json:"clock_offset_seconds"`
	LastSeen           *time.Time `json:"last_seen"` // null until the edge first sent a batch or synced its roster
	CreatedAt          time.Time  `json:"created_at"`
	EdgeID             string     `json:"edge_id"`
	EdgeVersion        string     `json:"edge_version"`
	// The backlog and dead letters as the edge last reported them; null
	// when it never did.
	BacklogMessages      *int64     `json:"backlog_messages"`
	BacklogOldestSeconds *int64     `json:"backlog_oldest_seconds"`
	DeadLetters          *int64     `json:"dead_letters"`
	Revoked              bool       `json:"revoked"`
	GraceUntil           *time.Time `json:"old_token_accepted_until,omitempty"`
}

// withStore opens the database named by c's configuration, runs fn on it
// and closes it. Every command comes through here, since opening applies
// pending migrations: each may change a SQLite database, so each is
// refused to a user other than the owner of its directory.
func withStore(ctx context.Context, c *cmdLine, fn func(ctx context.Context, st store.Store) error) error {
	if err := c.cfg.ValidateDB(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if err := checkOwner(c); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	st, err := store.OpenWith(ctx, c.cfg.DSN(), central.StoreOptions(c.cfg))
	if err != nil {
		return fmt.Errorf("open database %s: %w", central.RedactDSN(c.cfg.DSN()), err)
	}
	return errors.Join(fn(ctx, st), st.Close())
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// noArgs refuses arguments to a command that takes none.
func noArgs(name string, rest []string) error {
	if len(rest) > 0 {
		return usagef("%s takes no arguments, got %q (flags go before arguments)", name, rest)
	}
	return nil
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("migrate", "migrate [--db URL]", stderr, false)
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs("migrate", rest); err != nil {
		return err
	}
	return withStore(ctx, c, func(_ context.Context, st store.Store) error {
		// Opening the store has checked the database and applied the
		// pending migrations; the GuardianAI schema says what it found.
		if r, ok := st.(interface{ MigrationReport() []string }); ok {
			for _, line := range r.MigrationReport() {
				fmt.Fprintln(stdout, line)
			}
		}
		fmt.Fprintf(stdout, "database %s is at the current schema (%s)\n", central.RedactDSN(c.cfg.DSN()), c.cfg.Schema)
		return nil
	})
}

func homeAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("home add", "home add [--json] NAME", stderr, false)
	asJSON := c.flags().Bool("json", false, `print {"home_id":…,"token":…}`)
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("home add takes one argument, the home's name (flags go before it), got %q", rest)
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		id, token, err := st.AddHome(ctx, rest[0])
		if err != nil {
			return fmt.Errorf("add home: %w", err)
		}
		if *asJSON {
			return printJSON(stdout, map[string]string{"home_id": id, "token": token})
		}
		fmt.Fprintf(stdout, "home_id: %s\ntoken:   %s\n", id, token)
		fmt.Fprintln(stderr, "The token is shown only this once: configure it on the home's edge.")
		return nil
	})
}

func homeAddReader(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("home add-reader", "home add-reader [--json] HOME_ID", stderr, false)
	asJSON := c.flags().Bool("json", false, `print {"home_id":…,"reader_id":…,"token":…}`)
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("home add-reader takes one argument, the home's id (flags go before it), got %q", rest)
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		id, token, err := st.AddReader(ctx, rest[0])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("add reader: no home %q (see: hearth-central home list)", rest[0])
		} else if err != nil {
			return fmt.Errorf("add reader: %w", err)
		}
		if *asJSON {
			return printJSON(stdout, map[string]string{"home_id": rest[0], "reader_id": id, "token": token})
		}
		fmt.Fprintf(stdout, "home_id:   %s\nreader_id: %s\ntoken:     %s\n", rest[0], id, token)
		fmt.Fprintln(stderr, "The token is shown only this once. It reads this home's children's data (GET /v1/children/…) and nothing else.")
		return nil
	})
}

func homeList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("home list", "home list [--json]", stderr, false)
	asJSON := c.flags().Bool("json", false, "print a JSON list")
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs("home list", rest); err != nil {
		return err
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		homes, err := fleet.Homes(ctx, st, nil)
		if err != nil {
			return fmt.Errorf("list homes: %w", err)
		}
		if *asJSON {
			return printJSON(stdout, homesJSON(homes))
		}
		return writeHomes(stdout, homes)
	})
}

func homesJSON(homes []fleet.Home) []HomeJSON {
	out := make([]HomeJSON, 0, len(homes))
	for _, h := range homes {
		j := HomeJSON{HomeID: h.ID, Name: h.Name, Children: h.Children,
			ClockOffsetSeconds: h.ClockOffset.Seconds(), CreatedAt: h.CreatedAt.UTC(),
			EdgeID: h.Edge.EdgeID, EdgeVersion: h.Edge.Version, Revoked: h.Edge.Revoked,
			BacklogMessages: count(h.Edge.BacklogMessages), BacklogOldestSeconds: count(h.Edge.BacklogOldestSeconds),
			DeadLetters: count(h.Edge.DeadLetters)}
		if !h.LastSeen.IsZero() {
			seen := h.LastSeen.UTC()
			j.LastSeen = &seen
		}
		if !h.Edge.GraceUntil.IsZero() {
			g := h.Edge.GraceUntil.UTC()
			j.GraceUntil = &g
		}
		out = append(out, j)
	}
	return out
}

// count is a reported count, nil when never reported (-1).
func count(n int64) *int64 {
	if n < 0 {
		return nil
	}
	return &n
}

// writeHomes prints homes as an aligned table.
func writeHomes(w io.Writer, homes []fleet.Home) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOME ID\tNAME\tCHILDREN\tEDGE\tVERSION\tLAST SEEN\tBACKLOG\tCLOCK OFFSET\tTOKEN\tCREATED")
	for _, h := range homes {
		offset, seen := "-", "never"
		if !h.LastSeen.IsZero() {
			offset = fmt.Sprintf("%+.3fs", h.ClockOffset.Seconds())
			seen = h.LastSeen.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Name, h.Children, dash(h.Edge.EdgeID), dash(h.Edge.Version),
			seen, backlog(h.Edge), offset, tokenState(h.Edge), h.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// backlog is "12 (oldest 30s)", or "-" when never reported.
func backlog(e store.EdgeState) string {
	if e.BacklogMessages < 0 {
		return "-"
	}
	if e.BacklogOldestSeconds < 0 {
		return fmt.Sprint(e.BacklogMessages)
	}
	return fmt.Sprintf("%d (oldest %s)", e.BacklogMessages, time.Duration(e.BacklogOldestSeconds)*time.Second)
}

// tokenState is "revoked", "active", or when the old token's grace ends.
func tokenState(e store.EdgeState) string {
	switch {
	case e.Revoked:
		return "revoked"
	case !e.GraceUntil.IsZero():
		return "old accepted until " + e.GraceUntil.UTC().Format(time.RFC3339)
	}
	return "active"
}

func childAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("child add", "child add [--json] --home ID [--hash H] [--name N]", stderr, false)
	asJSON := c.flags().Bool("json", false, `print {"child_hash":…}`)
	home := c.flags().String("home", "", "id of the child's home (required)")
	hash := c.flags().String("hash", "", "the child's hash as the phone knows it (default: a fresh random one; required with --schema guardianai); the hash of a detached child puts it back in a home with its data")
	name := c.flags().String("name", "", "the child's name, shown on pages and sent to the edge (--schema guardianai: default its first_name)")
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs("child add", rest); err != nil {
		return err
	}
	if *home == "" {
		return usagef("child add needs --home ID (see: hearth-central home list)")
	}
	if c.cfg.Schema == store.SchemaGuardianAI {
		return attachChild(ctx, c, *home, *hash, *name, *asJSON, stdout)
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		h, err := addNamedChild(ctx, st, *home, *hash, *name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("add child: no home %q (see: hearth-central home list)", *home)
		case errors.Is(err, store.ErrExists):
			return fmt.Errorf("add child: hash %q is taken already", *hash)
		case err != nil:
			return fmt.Errorf("add child: %w", err)
		}
		if *asJSON && *name != "" {
			return printJSON(stdout, map[string]string{"child_hash": h, "name": *name})
		} else if *asJSON {
			return printJSON(stdout, map[string]string{"child_hash": h})
		}
		_, err = fmt.Fprintln(stdout, h)
		return err
	})
}

// addNamedChild adds a child and names it (pages show the name; the
// roster sends it to the edge). A name that cannot be kept fails the
// command before the child exists.
func addNamedChild(ctx context.Context, st store.Store, home, hash, name string) (string, error) {
	if err := store.CheckChildName(name); err != nil {
		return "", err
	}
	h, err := st.AddChild(ctx, home, hash)
	if err != nil || name == "" {
		return h, err
	}
	if err := st.SetChildName(ctx, home, h, name); err != nil {
		return h, fmt.Errorf("child %s was added but not named (hearth-central child add cannot rename it; the name is optional): %w", h, err)
	}
	return h, nil
}

// attacher is a store of the GuardianAI schema, whose children exist
// already in the dashboard's accounts_child.
type attacher interface {
	AttachChild(ctx context.Context, homeID, hash, name string) (string, error)
}

// attachChild attaches an existing GuardianAI child to a home.
func attachChild(ctx context.Context, c *cmdLine, home, hash, name string, asJSON bool, stdout io.Writer) error {
	if hash == "" {
		return usagef("child add needs --hash H with --schema guardianai: the child's child_hash in the dashboard (hearth does not create GuardianAI children)")
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		a, ok := st.(attacher)
		if !ok {
			return fmt.Errorf("add child: BUG: store %T of schema guardianai cannot attach children", st)
		}
		n, err := a.AttachChild(ctx, home, hash, name)
		switch {
		case errors.Is(err, store.ErrUnknownChild):
			return fmt.Errorf("add child: GuardianAI has no child with child_hash %q: create it in the dashboard first", hash)
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("add child: no home %q (see: hearth-central home list)", home)
		case errors.Is(err, store.ErrExists):
			return fmt.Errorf("add child: child %q is in home %q already", hash, home)
		case err != nil:
			return fmt.Errorf("add child: %w", err)
		}
		if asJSON {
			return printJSON(stdout, map[string]string{"child_hash": hash, "name": n})
		}
		_, err = fmt.Fprintf(stdout, "%s\t%s\n", hash, n)
		return err
	})
}

func childList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("child list", "child list [--json] --home ID | --detached [--after HASH] [--limit N]", stderr, false)
	asJSON := c.flags().Bool("json", false, "print a JSON list (with --detached: an object with the page and whether more follow)")
	home := c.flags().String("home", "", "id of the home (required, unless --detached)")
	d := detachedFlags{
		on:    c.flags().Bool("detached", false, "list the children in no home (detached with child remove, their data kept) instead"),
		after: c.flags().String("after", "", "with --detached: start after this hash (the last one of the previous page)"),
		limit: c.flags().Int("limit", 100, fmt.Sprintf("with --detached: at most this many children (1-%d)", store.MaxDetachedPage)),
	}
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs("child list", rest); err != nil {
		return err
	}
	if *d.on {
		if *home != "" {
			return usagef("child list takes --home ID or --detached, not both: a detached child is in no home")
		}
		if *d.limit < 1 || *d.limit > store.MaxDetachedPage {
			return usagef("child list --detached: --limit must be between 1 and %d, got %d", store.MaxDetachedPage, *d.limit)
		}
		return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
			return listDetached(ctx, st, *d.after, *d.limit, *asJSON, stdout, stderr)
		})
	}
	if isSet(c.flags(), "after") || isSet(c.flags(), "limit") {
		return usagef("child list: --after and --limit page --detached only")
	}
	if *home == "" {
		return usagef("child list needs --home ID (see: hearth-central home list), or --detached for the children in no home")
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		hashes, err := st.Children(ctx, *home)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("list children: no home %q", *home)
		} else if err != nil {
			return fmt.Errorf("list children: %w", err)
		}
		if *asJSON {
			if hashes == nil {
				hashes = []string{}
			}
			return printJSON(stdout, hashes)
		}
		for _, h := range hashes {
			fmt.Fprintln(stdout, h)
		}
		return nil
	})
}

func stats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("stats", "stats [--db URL]", stderr, false)
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs("stats", rest); err != nil {
		return err
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		counts, err := st.Stats(ctx)
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		return printJSON(stdout, counts)
	})
}

// appLister is a store of the GuardianAI schema, which has backend_app.
type appLister interface {
	Apps(ctx context.Context) ([]store.App, error)
}

// apps lists the GuardianAI dashboard's apps; --unnamed only those that
// still have the name and empty icon hearth gave them, which the dashboard
// fills from the Play Store.
func apps(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("apps", "apps [--json] [--unnamed]", stderr, false)
	asJSON := c.flags().Bool("json", false, "print a JSON list")
	unnamed := c.flags().Bool("unnamed", false, "only apps without a Play Store name or icon yet")
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs("apps", rest); err != nil {
		return err
	}
	if c.cfg.Schema != store.SchemaGuardianAI {
		return usagef("apps lists the GuardianAI dashboard's backend_app: it needs --schema guardianai")
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		l, ok := st.(appLister)
		if !ok {
			return fmt.Errorf("apps: BUG: store %T of schema guardianai cannot list apps", st)
		}
		all, err := l.Apps(ctx)
		if err != nil {
			return fmt.Errorf("apps: %w", err)
		}
		out := []store.App{}
		for _, a := range all {
			if !*unnamed || a.Unnamed() {
				out = append(out, a)
			}
		}
		if *asJSON {
			return printJSON(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DOMAIN\tAPP NAME\tICON")
		for _, a := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Domain, a.Name, a.IconURL)
		}
		return tw.Flush()
	})
}
