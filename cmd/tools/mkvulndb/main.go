// Command mkvulndb writes the vulnerability database that `make vuln` hands
// to govulncheck (-db file://DIR), from the OSV files of the pinned
// golang.org/x/vulndb module, keeping the entries that affect the modules
// listed in -modules (as `go list -m all` prints them) and the Go
// distribution itself. See package vulndb.
//
//	go list -m all | go run ./cmd/tools/mkvulndb -osv $VULNDB/data/osv -modules - -out bin/vulndb
package main

import (
	"flag"
	"io"
	"log"
	"os"

	"github.com/inventory-events/inventory/internal/vulndb"
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
		mods := vulndb.ParseModules(string(b))
		if len(mods) == 0 {
			log.Fatalf("-modules %s lists no module", *modules)
		}
		keep = vulndb.Keep(mods)
	}
	st, err := vulndb.Build(*osvDir, *out, keep)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("mkvulndb: %s: %d of %d OSV entries, %d modules indexed", *out, st.Kept, st.Read, st.Modules)
}
