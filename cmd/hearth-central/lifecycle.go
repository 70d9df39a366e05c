package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"time"

	"github.com/guardianai/hearth/central/fleet"
	"github.com/guardianai/hearth/central/store"
)

// ops returns the audited actions on st; the audit lines go to stderr,
// which an operator's shell history or a wrapper keeps.
func ops(st store.Store, stderr io.Writer) fleet.Ops {
	actor := "cli"
	if u, err := user.Current(); err == nil {
		actor = "cli:" + u.Username
	}
	return fleet.Ops{Store: st, Log: slog.New(slog.NewTextHandler(stderr, nil)), Actor: actor}
}

// oneHome parses a command taking exactly one argument, a home id.
func oneHome(name string, rest []string) (string, error) {
	if len(rest) != 1 {
		return "", usagef("%s takes one argument, the home's id (flags go before it), got %q", name, rest)
	}
	return rest[0], nil
}

// homeErr says what failed, naming an unknown home in words.
func homeErr(op, home string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s: no home %q (see: hearth-central home list)", op, home)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func homeRotateToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("home rotate-token", "home rotate-token [--grace DURATION] [--json] HOME_ID", stderr, false)
	grace := c.flags().Duration("grace", 0, "keep accepting the old token this long (a planned rotation); 0 refuses it at once (a leaked token)")
	asJSON := c.flags().Bool("json", false, `print {"token":…}`)
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	home, err := oneHome("home rotate-token", rest)
	if err != nil {
		return err
	}
	if *grace < 0 || *grace > 30*24*time.Hour {
		return usagef("home rotate-token: --grace must be between 0 and 720h, got %s", *grace)
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		tok, err := ops(st, stderr).RotateToken(ctx, home, *grace)
		if err != nil {
			return homeErr("rotate token", home, err)
		}
		if *asJSON {
			return printJSON(stdout, map[string]string{"home_id": home, "token": tok})
		}
		fmt.Fprintf(stdout, "home_id: %s\ntoken:   %s\n", home, tok)
		if *grace > 0 {
			fmt.Fprintf(stderr, "The old token is accepted until %s (on every replica), then refused. The new token is shown only this once.\n",
				time.Now().Add(*grace).UTC().Format(time.RFC3339))
		} else {
			fmt.Fprintln(stderr, "The old token is refused from now on. The new token is shown only this once: configure it on the home's edge.")
		}
		return nil
	})
}

func homeRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("home revoke", "home revoke HOME_ID", stderr, false)
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	home, err := oneHome("home revoke", rest)
	if err != nil {
		return err
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		if err := ops(st, stderr).Revoke(ctx, home); err != nil {
			return homeErr("revoke", home, err)
		}
		fmt.Fprintf(stdout, "home %s: token revoked; its data stays. hearth-central home rotate-token %s issues a new one.\n", home, home)
		return nil
	})
}

func homeRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("home remove", "home remove --yes HOME_ID", stderr, false)
	yes := c.flags().Bool("yes", false, "confirm: the home, its tokens and (hearth's schema) its children's data are deleted for good")
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	home, err := oneHome("home remove", rest)
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("home remove deletes the home, its tokens and its children's data for good: add --yes to confirm")
	}
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		n, err := ops(st, stderr).RemoveHome(ctx, home)
		if err != nil {
			return homeErr("remove home", home, err)
		}
		fmt.Fprintf(stdout, "home %s removed (%d data rows erased)\n", home, n)
		return nil
	})
}

func childRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("child remove", "child remove --home ID [--erase-data --yes] HASH", stderr, false)
	home := c.flags().String("home", "", "id of the child's home (required, except to erase a child already detached from every home)")
	erase := c.flags().Bool("erase-data", false, "also delete the child's data (in batches); without it the child leaves its home and its data stays")
	yes := c.flags().Bool("yes", false, "confirm --erase-data: the data is deleted for good")
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("child remove takes one argument, the child's hash (flags go before it), got %q", rest)
	}
	if *home == "" && !*erase {
		return usagef("child remove needs --home ID (see: hearth-central home list)")
	}
	if *erase && !*yes {
		return usagef("child remove --erase-data deletes the child's data for good: add --yes to confirm")
	}
	hash := rest[0]
	return withStore(ctx, c, func(ctx context.Context, st store.Store) error {
		n, err := ops(st, stderr).RemoveChild(ctx, *home, hash, *erase)
		switch {
		case errors.Is(err, store.ErrNotFound) && *home == "":
			return fmt.Errorf("remove child: no child %q detached from every home: name its home with --home ID (see: hearth-central home list), or check the hash", hash)
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("remove child: home %q has no child %q (see: hearth-central child list --home %s)", *home, hash, *home)
		case err != nil:
			return fmt.Errorf("remove child: %w", err)
		}
		if *erase {
			fmt.Fprintf(stdout, "child %s removed (%d data rows erased)\n", hash, n)
		} else {
			fmt.Fprintf(stdout, "child %s detached from home %s; its data stays (child add puts it back in a home; child remove --erase-data --yes %s deletes it)\n", hash, *home, hash)
		}
		return nil
	})
}
