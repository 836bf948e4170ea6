// Command inventory is the operator's CLI of the inventory pipeline. See
// `inventory help`.
package main

import (
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/inventory-events/inventory/internal/app/cli"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"    // local warehouse directories
)

func main() {
	// The CLI runs Beam jobs on an in-process Prism (demo, up): Beam's
	// runtime is initialised first, and the CLI's own logger then replaces
	// the one beam.Init installs.
	beam.Init()
	os.Exit(cli.Main(os.Args[1:]))
}
