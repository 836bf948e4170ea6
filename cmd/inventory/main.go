// Command inventory is the operator's CLI of the inventory pipeline. See
// `inventory help`.
package main

import (
	"os"

	"github.com/inventory-events/inventory/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
