// Package stock applies the stream's adjustments to the stock of their
// (sku, location) key in Beam state: decoding and validation, the ledgers,
// live thresholds, and the reference data (thresholds, snapshot, restore)
// they start from.
//
// Elements are batched on purpose. Prism's cost is per element, so the
// source emits one Batch per pull, decoding turns it into at most one shardBatch
// per shard of the key space, and the stock DoFn keeps the ledgers of every
// (sku, location) key of a shard in that shard's state. Semantics stay per
// key: each key has its own ledger.State; the shard only groups them.
package stock
