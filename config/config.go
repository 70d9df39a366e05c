// Package config loads a program's settings in layers: defaults, then one
// YAML file, then HEARTH_* environment variables, then command-line flags.
// Every key of the file has a flag and a variable of the same name.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Binder ties struct fields to flags and environment variables.
type Binder struct {
	fs   *flag.FlagSet
	vars []binding
}

type binding struct {
	flag string
	env  string
	val  flag.Value
}

// NewBinder returns a Binder whose flags belong to a FlagSet named name.
func NewBinder(name string, out io.Writer) *Binder {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return &Binder{fs: fs}
}

// FlagSet exposes the flags, for flags that are not settings (--check-config).
func (b *Binder) FlagSet() *flag.FlagSet { return b.fs }

func (b *Binder) bind(name, usage string, v flag.Value) {
	env := "HEARTH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	b.fs.Var(v, name, usage+" (env "+env+")")
	b.vars = append(b.vars, binding{flag: name, env: env, val: v})
}

// String binds a string setting.
func (b *Binder) String(p *string, name, usage string) { b.bind(name, usage, (*stringValue)(p)) }

// Int binds an int setting.
func (b *Binder) Int(p *int, name, usage string) { b.bind(name, usage, (*intValue)(p)) }

// Int64 binds an int64 setting.
func (b *Binder) Int64(p *int64, name, usage string) { b.bind(name, usage, (*int64Value)(p)) }

// Float binds a float64 setting.
func (b *Binder) Float(p *float64, name, usage string) { b.bind(name, usage, (*floatValue)(p)) }

// Bool binds a bool setting.
func (b *Binder) Bool(p *bool, name, usage string) { b.bind(name, usage, (*boolValue)(p)) }

// Duration binds a time.Duration setting ("30s", "90m", "365d").
func (b *Binder) Duration(p *time.Duration, name, usage string) {
	b.bind(name, usage, (*durationValue)(p))
}

// Bytes binds a byte count that accepts units ("64KiB", "1GB", "1048576").
func (b *Binder) Bytes(p *ByteSize, name, usage string) { b.bind(name, usage, p) }

// List binds a comma-separated list.
func (b *Binder) List(p *[]string, name, usage string) { b.bind(name, usage, (*listValue)(p)) }

// Load fills cfg (a pointer to a struct with yaml tags, holding the
// defaults) from the YAML file named by --config or HEARTH_CONFIG (if any),
// then the environment, then args. It returns the path of the file it
// read, or "" when it read none (a missing default file).
func (b *Binder) Load(cfg any, args []string, defaultFile string) (string, error) {
	b.fs.String("config", defaultFile, `YAML configuration file; "" for none (env HEARTH_CONFIG)`)
	file, explicit := configFromArgs(args)
	if !explicit {
		file, explicit = os.LookupEnv("HEARTH_CONFIG")
	}
	if !explicit {
		file = defaultFile
	}
	read, err := loadYAML(cfg, file, explicit)
	if err != nil {
		return file, err
	}
	if !read {
		file = "" // a missing default file: say that none was read
	}
	for _, v := range b.vars {
		if s, ok := os.LookupEnv(v.env); ok {
			if err := v.val.Set(s); err != nil {
				return file, fmt.Errorf("environment %s=%q: %w", v.env, s, err)
			}
		}
	}
	if err := b.fs.Parse(args); err != nil {
		return file, err
	}
	if b.fs.NArg() > 0 {
		return file, fmt.Errorf("unexpected arguments: %q", b.fs.Args())
	}
	return file, nil
}

// configFromArgs finds --config before the flags are parsed, since the
// file's values must come below the flags.
func configFromArgs(args []string) (string, bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		a = strings.TrimLeft(a, "-")
		if a == "config" && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "config="); ok {
			return v, true
		}
	}
	return "", false
}

// loadYAML decodes file into cfg, refusing unknown keys (typos), and says
// whether it read one. A missing default file is fine; a missing file
// named explicitly is an error.
func loadYAML(cfg any, file string, explicit bool) (bool, error) {
	if file == "" {
		return false, nil
	}
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("config %s: %w", file, err)
	}
	return true, nil
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	*v = intValue(n)
	return err
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type int64Value int64

func (v *int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	*v = int64Value(n)
	return err
}
func (v *int64Value) String() string { return strconv.FormatInt(int64(*v), 10) }

type floatValue float64

func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	*v = floatValue(f)
	return err
}
func (v *floatValue) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	*v = boolValue(b)
	return err
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := ParseDuration(s)
	*v = durationValue(d)
	return err
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

type listValue []string

func (v *listValue) Set(s string) error {
	*v = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*v = append(*v, part)
		}
	}
	return nil
}
func (v *listValue) String() string { return strings.Join(*v, ",") }

// ParseDuration is time.ParseDuration plus a "d" (day) unit.
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}
