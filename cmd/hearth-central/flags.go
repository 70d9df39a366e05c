package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/guardianai/hearth/central"
	"github.com/guardianai/hearth/config"
)

// defaultConfigFile is read when it exists and no --config is given.
const defaultConfigFile = "/etc/hearth/central.yaml"

// cmdLine is one command's flags over central's configuration.
type cmdLine struct {
	cfg  central.Config
	b    *config.Binder
	file string   // the configuration file, after parse
	args []string // the command line after the command's name, for messages
}

// newCmdLine prepares the flags of command synopsis ("home add [--json]
// NAME"): the database settings, or every setting when full.
func newCmdLine(name, synopsis string, stderr io.Writer, full bool) *cmdLine {
	c := &cmdLine{cfg: central.DefaultConfig(), b: config.NewBinder("hearth-central "+name, stderr)}
	if full {
		c.cfg.Bind(c.b)
	} else {
		c.cfg.BindDB(c.b)
	}
	fs := c.b.FlagSet()
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hearth-central %s\n\nFlags (before arguments):\n", synopsis)
		fs.PrintDefaults()
		if fs.Lookup("config") == nil {
			fmt.Fprintf(fs.Output(), "  -config string\n    \tYAML configuration file (env HEARTH_CONFIG) (default %q)\n", defaultConfigFile)
		}
	}
	return c
}

// fileName names the configuration file read, for messages.
func (c *cmdLine) fileName() string {
	if c.file == "" {
		return "no file"
	}
	return c.file
}

// flags exposes the flag set for a command's own flags.
func (c *cmdLine) flags() *flag.FlagSet { return c.b.FlagSet() }

// parse loads the configuration (defaults, file, environment, flags) and
// returns the arguments after the flags. A malformed command line is a
// *usageError; -h prints the usage and returns flag.ErrHelp.
func (c *cmdLine) parse(args []string) ([]string, error) {
	c.args = args
	flagArgs, rest, err := splitArgs(c.flags(), args)
	if errors.Is(err, flag.ErrHelp) {
		c.flags().Usage()
		return nil, err
	}
	if err != nil {
		return nil, usagef("%s: %v", strings.TrimPrefix(c.flags().Name(), "hearth-central "), err)
	}
	if c.file, err = c.b.Load(&c.cfg, flagArgs, defaultConfigFile); err != nil {
		return nil, err
	}
	return rest, nil
}

// splitArgs separates args into the leading flags of fs (plus --config)
// and the arguments after them. Flag values are parsed on fresh copies,
// so that a malformed one shows here, before any file is read.
func splitArgs(fs *flag.FlagSet, args []string) (flags, rest []string, err error) {
	tmp := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	tmp.SetOutput(io.Discard)
	fs.VisitAll(func(f *flag.Flag) { tmp.Var(freshValue(f.Value), f.Name, "") })
	if tmp.Lookup("config") == nil {
		tmp.String("config", "", "")
	}
	if err := tmp.Parse(args); err != nil {
		return nil, nil, err
	}
	n := len(args) - tmp.NArg()
	return args[:n], args[n:], nil
}

// freshValue returns a new zero value of v's type, which parses like v.
func freshValue(v flag.Value) flag.Value {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		if fresh, ok := reflect.New(t.Elem()).Interface().(flag.Value); ok {
			return fresh
		}
	}
	return nopValue{isBool(v)}
}

func isBool(v flag.Value) bool {
	b, ok := v.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// nopValue stands in for a flag value of a type that cannot be copied.
type nopValue struct{ boolean bool }

func (nopValue) String() string     { return "" }
func (nopValue) Set(string) error   { return nil }
func (v nopValue) IsBoolFlag() bool { return v.boolean }
