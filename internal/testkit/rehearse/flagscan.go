package rehearse

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
)

// flagLiteral matches a string literal that passes a flag: "--name" or
// "--name=...".
var flagLiteral = regexp.MustCompile(`^--([a-z][a-z0-9_-]*)(=|$)`)

// FlagUse is one string literal of Go code that passes a flag.
type FlagUse struct {
	Pos  string // file:line:column
	Name string // "--name"
}

// FlagLiterals returns every flag-passing string literal of the Go files,
// for the tests that check that the rehearsal and game-day pass no flag the
// deploy files do not set.
func FlagLiterals(files []string) ([]FlagUse, error) {
	var uses []FlagUse
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("rehearse: flag literals: %w", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if m := flagLiteral.FindStringSubmatch(s); m != nil {
				uses = append(uses, FlagUse{Pos: fset.Position(lit.Pos()).String(), Name: "--" + m[1]})
			}
			return true
		})
	}
	return uses, nil
}

// AllowedFlags are the flags the deploy files' launch gives: the gcloud
// flags the template launcher maps (launcherFlags) and the Beam flags it
// maps them to, the gcloud-only ones (gcloudOnly), and rehearsalFlags.
func AllowedFlags() map[string]bool {
	allowed := map[string]bool{}
	for k, v := range launcherFlags {
		allowed[k], allowed[v] = true, true
	}
	for _, k := range gcloudOnly {
		allowed[k] = true
	}
	for k := range rehearsalFlags {
		allowed[k] = true
	}
	return allowed
}
