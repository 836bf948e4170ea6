package cli

import (
	"regexp"
	"testing"

	"github.com/spf13/cobra"
)

// multiWordName finds, in pflag's rendered flag usages, a value name of
// more than one word.
var multiWordName = regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[\w-]+) (\S+(?: \S+)+?)\s{2,}`)

// TestFlagUsageNames: no flag's help shows a backquoted phrase as its value
// name (pflag takes the first `word` of a usage as the name: up --help said
// "--compact-every inventory compact").
func TestFlagUsageNames(t *testing.T) {
	if multiWordName.FindString("      --compact-every inventory compact   how often\n      --skip N   pass over\n") == "" {
		t.Fatal("the pattern misses the bug it is for")
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, m := range multiWordName.FindAllStringSubmatch(c.LocalFlags().FlagUsagesWrapped(0), -1) {
			t.Errorf("%s %s shows the value name %q", c.CommandPath(), m[1], m[2])
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot())
}
