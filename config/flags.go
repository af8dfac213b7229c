// Package config binds command-line flags to HANDOFF_* environment variables so
// every setting can come from either, with the flag winning when both are given.
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvPrefix is put in front of a flag's upper-cased name to find its variable.
const EnvPrefix = "HANDOFF_"

// EnvName is the environment variable that feeds the flag called name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// FlagSet is a flag.FlagSet whose usage names the environment variable of
// every flag, and whose Parse falls back to those variables.
type FlagSet struct {
	*flag.FlagSet
	summary string
}

// NewFlagSet makes the flags of one subcommand; summary is printed by --help.
func NewFlagSet(command, summary string, out io.Writer) *FlagSet {
	fs := &FlagSet{FlagSet: flag.NewFlagSet(command, flag.ContinueOnError), summary: summary}
	fs.SetOutput(out)
	fs.Usage = fs.usage
	return fs
}

func (fs *FlagSet) usage() {
	out := fs.Output()
	fmt.Fprintf(out, "Usage: handoff %s [flags]\n\n%s\n\nFlags (each can also be set by its environment variable):\n", fs.Name(), fs.summary)
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%s, %s%s\n      %s\n", f.Name, EnvName(f.Name), def, f.Usage)
	})
}

// Parse reads args, then fills every flag not given on the command line from
// its environment variable. A bad value in either place is an error that
// names where it came from.
func (fs *FlagSet) Parse(args []string) error {
	if err := fs.FlagSet.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if setErr := fs.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("%s: bad value for %s: %w", fs.Name(), EnvName(f.Name), setErr)
			}
		}
	})
	return err
}
