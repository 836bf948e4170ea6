package inventoryv1

import _ "embed"

// The schema definitions, as registered in the Pub/Sub Schema Registry.
var (
	//go:embed inventory_adjustment.proto
	InventoryAdjustmentProto string
	//go:embed low_stock_alert.proto
	LowStockAlertProto string
	//go:embed threshold_update.proto
	ThresholdUpdateProto string
)
