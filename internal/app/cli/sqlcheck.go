package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// checkWarehouseDir refuses a local warehouse that is not there, rather
// than querying empty views over it.
func checkWarehouseDir(uri string) error {
	if strings.HasPrefix(uri, "bq://") {
		return nil
	}
	fi, err := os.Stat(uri)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("sql: warehouse %q: no such directory (pass --warehouse; `inventory setup`, `up` or `demo` make one)", uri)
	}
	for _, t := range warehouse.Tables {
		if _, err := os.Stat(filepath.Join(uri, t.Name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("sql: %q is not a warehouse: it has none of the tables' directories (adjustments, stock_levels, ...)", uri)
}
