package cli

// The tests store rows in the warehouse; as in a main, the backends they
// use are linked by import (see loaders/warehouse).
import (
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery"
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"
)
