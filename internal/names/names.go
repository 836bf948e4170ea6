// Package names holds the names of the system's Pub/Sub resources and the
// default local warehouse: one definition each, imported by every part that
// creates, reads or writes them (setup, the publisher and consumer, the
// streaming job, the local stack, the benchmarks). Warehouse table names are
// loaders/warehouse's (warehouse.Adjustments, ...).
package names

// Pub/Sub topics, subscriptions and schemas.
const (
	// Topic receives inventory adjustments; Subscription is what the
	// streaming job reads.
	Topic        = "inventory-topic"
	Subscription = "inventory-sub"
	// AlertTopic receives low-stock alerts; AlertSubscription is
	// operations'.
	AlertTopic        = "low-stock-alerts"
	AlertSubscription = "low-stock-consumer"
	// DeadLetterTopic receives everything refused, with its reason.
	DeadLetterTopic        = "inventory-dead-letter"
	DeadLetterSubscription = "inventory-dead-letter-sub"
	// ThresholdTopic carries live reorder threshold changes (inventory
	// thresholds set) to the streaming job's ThresholdSubscription.
	ThresholdTopic        = "threshold-updates"
	ThresholdSubscription = "threshold-updates-sub"
	// Schema is bound to Topic, AlertSchema to AlertTopic, ThresholdSchema
	// to ThresholdTopic.
	Schema          = "inventory-schema"
	AlertSchema     = "low-stock-alert-schema"
	ThresholdSchema = "threshold-update-schema"
)

// Warehouse is the local warehouse used when no --warehouse is given.
const Warehouse = "./warehouse"
