package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/guardianai/hearth/central/store"
)

// detachedFlags are child list's flags for the children in no home.
type detachedFlags struct {
	on    *bool
	after *string
	limit *int
}

// DetachedJSON is one child in `child list --detached --json`.
type DetachedJSON struct {
	ChildHash string     `json:"child_hash"`
	Name      string     `json:"name"`
	LastData  *time.Time `json:"last_data"` // its newest location fix or site visit (device time); null when none
	LastDay   string     `json:"last_screen_time_day"`
}

// DetachedPageJSON is `child list --detached --json`: one page, and the
// --after of the next when more follow.
type DetachedPageJSON struct {
	Children []DetachedJSON `json:"children"`
	More     bool           `json:"more"`
	Next     string         `json:"next_after,omitempty"`
}

// listDetached prints one page of the children in no home: a table, and
// on stderr how to get the next page when there is one.
func listDetached(ctx context.Context, st store.Store, after string, limit int, asJSON bool, stdout, stderr io.Writer) error {
	kids, more, err := st.DetachedChildren(ctx, after, limit)
	if err != nil {
		return fmt.Errorf("list detached children: %w", err)
	}
	page := DetachedPageJSON{Children: []DetachedJSON{}, More: more}
	for _, k := range kids {
		j := DetachedJSON{ChildHash: k.Hash, Name: k.Name, LastDay: k.LastDay}
		if !k.LastData.IsZero() {
			t := k.LastData
			j.LastData = &t
		}
		page.Children = append(page.Children, j)
	}
	if more {
		page.Next = kids[len(kids)-1].Hash
	}
	if asJSON {
		return printJSON(stdout, page)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HASH\tNAME\tLAST DATA\tLAST SCREEN-TIME DAY")
	for _, k := range page.Children {
		last := "-"
		if k.LastData != nil {
			last = k.LastData.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ChildHash, orDash(k.Name), last, orDash(k.LastDay))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(stderr, "More children in no home follow: hearth-central child list --detached --after %s\n", page.Next)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// isSet says whether the command line gave flag name.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
