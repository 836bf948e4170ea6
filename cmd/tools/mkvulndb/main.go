// Command mkvulndb writes the vulnerability database that `make vuln` hands
// to govulncheck (-db file://DIR), from the OSV files of the pinned
// golang.org/x/vulndb module (its data/osv folder), keeping the entries that
// affect the modules listed in -modules (as `go list -m all` prints them) and
// the Go distribution itself, so CI builds a small database offline in about a
// second instead of compiling golang.org/x/vulndb/cmd/indexdb and its
// dependencies.
//
//	go list -m all | go run ./cmd/tools/mkvulndb -osv $VULNDB/data/osv -modules - -out bin/vulndb
//
// The layout is the v1 one (https://go.dev/security/vuln/database#api) that
// govulncheck's local client reads:
//
//	index/db.json       {"modified": newest entry's modified time}
//	index/modules.json  [{"path": module, "vulns": [{"id", "modified"}]}]
//	ID/<id>.json        the OSV entry, byte for byte
//
// The modules index leaves out the optional "fixed" version. It is only a
// pre-filter: without it govulncheck reads every entry listed for a module and
// decides from the entry's own ranges whether the version in use is affected,
// so leaving it out can cost a few file reads but never hides a finding.
package main

import (
	"flag"
	"io"
	"log"
	"os"
)

func main() {
	osvDir := flag.String("osv", "", "folder of OSV JSON files (data/osv of golang.org/x/vulndb)")
	out := flag.String("out", "", "database folder to write (replaced if it holds a database)")
	modules := flag.String("modules", "", "file listing the modules to keep, one a line (- for stdin); empty keeps every entry")
	flag.Parse()
	log.SetFlags(0)
	if *osvDir == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}

	var keep func(string) bool
	if *modules != "" {
		var b []byte
		var err error
		if *modules == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*modules)
		}
		if err != nil {
			log.Fatal(err)
		}
		mods := ParseModules(string(b))
		if len(mods) == 0 {
			log.Fatalf("-modules %s lists no module", *modules)
		}
		keep = Keep(mods)
	}
	st, err := Build(*osvDir, *out, keep)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("mkvulndb: %s: %d of %d OSV entries, %d modules indexed", *out, st.Kept, st.Read, st.Modules)
}
