// Command hearth-central is hearth's aggregation server and its admin tool:
// it takes batches from home edges and data from phones away from home into
// SQLite or PostgreSQL, and manages homes and children.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// version is set at build time (-ldflags -X main.version=…).
var version = "dev"

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

const usage = `hearth-central is hearth's aggregation server and its admin tool.

Usage:
  hearth-central serve [flags]                       run the server
  hearth-central migrate [flags]                     apply database migrations and exit
  hearth-central home add [--json] NAME              create a home; prints its id and token (shown once)
  hearth-central home add-reader [--json] HOME_ID    create a reader token for a home's children's data (shown once)
  hearth-central home list [--json]                  list homes: edge id, version, last seen, backlog, token state
  hearth-central home rotate-token [--grace DURATION] [--json] HOME_ID
                                                     give a home a new token (shown once); the old one is
                                                     refused at once, or after --grace on every replica
  hearth-central home revoke HOME_ID                 refuse a home's tokens at once (its data stays)
  hearth-central home remove --yes HOME_ID           delete a home, its tokens and its children's data
  hearth-central child add [--json] --home ID [--hash H] [--name N]
                                                     add a child to a home (guardianai: attach an
                                                     existing GuardianAI child, --hash required); prints its hash
  hearth-central child list [--json] --home ID       list a home's children
  hearth-central child list [--json] --detached [--after HASH] [--limit N]
                                                     list the children in no home (detached, data
                                                     kept): name, newest data; a page of --limit
                                                     (default 100), the next from --after
  hearth-central child remove --home ID [--erase-data --yes] HASH
                                                     detach a child from its home (its data stays;
                                                     child add puts it back), or delete it with its
                                                     data in batches (--home may be left out for a
                                                     child detached from every home)
  hearth-central stats [flags]                       row counts per table, as JSON
  hearth-central apps [--json] [--unnamed]           the GuardianAI dashboard's apps (--schema guardianai);
                                                     --unnamed: those with no Play Store name or icon yet
  hearth-central version                             print the version

Flags come before arguments. Every command takes
  --db URL        sqlite:///path/file.db or postgres://user@host/db (env HEARTH_DB;
                  default sqlite://<data-dir>/central.db)
  --data-dir DIR  directory of the default SQLite database (env HEARTH_DATA_DIR;
                  default /var/lib/hearth-central)
  --schema S      hearth (its own tables, the default) or guardianai (the GuardianAI
                  dashboard's Django tables) (env HEARTH_SCHEMA)
  --config FILE   YAML configuration (env HEARTH_CONFIG; default /etc/hearth/central.yaml)
Run "hearth-central <command> -h" for a command's flags.
`

// usageError is a command line that cannot be run; it exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitCode reports err on w and returns the process's exit status: 0 for
// success or help, 2 for a usage error, 1 for any other failure.
func exitCode(err error, w io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(w, "hearth-central: %v\nRun \"hearth-central help\" for usage.\n", err)
		return 2
	}
	fmt.Fprintln(w, "hearth-central:", err)
	return 1
}

// run runs the command line args.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, stdout, stderr)
	case "home":
		return group(ctx, "home", args, stdout, stderr, map[string]command{"add": homeAdd, "add-reader": homeAddReader, "list": homeList,
			"rotate-token": homeRotateToken, "revoke": homeRevoke, "remove": homeRemove})
	case "child":
		return group(ctx, "child", args, stdout, stderr, map[string]command{"add": childAdd, "list": childList, "remove": childRemove})
	case "stats":
		return stats(ctx, args, stdout, stderr)
	case "apps":
		return apps(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hearth-central", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown command %q", cmd)
}

// command runs one subcommand with its arguments.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

func group(ctx context.Context, name string, args []string, stdout, stderr io.Writer, cmds map[string]command) error {
	if len(args) == 0 {
		return usagef("%s needs a subcommand: %s", name, subcommands(cmds))
	}
	c, ok := cmds[args[0]]
	if !ok {
		return usagef("unknown command %q: %s takes %s", name+" "+args[0], name, subcommands(cmds))
	}
	return c(ctx, args[1:], stdout, stderr)
}

// subcommands lists a group's commands for messages: "add, add-reader or list".
func subcommands(cmds map[string]command) string {
	names := slices.Sorted(maps.Keys(cmds))
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
