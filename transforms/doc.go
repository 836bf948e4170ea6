// Package transforms holds the Beam building blocks of the inventory
// streaming job: the Pub/Sub source, decoding and validation, the per-key
// stock ledger in Beam state, and the conversion of its results to alerts and
// warehouse rows.
//
// Elements are batched on purpose. Prism's cost is per element, so the
// source emits one Batch per pull, decoding turns it into at most one Shard
// per shard of the key space, and the stock DoFn keeps the ledgers of every
// (sku, location) key of a shard in that shard's state. Semantics stay per
// key: each key has its own ledger.State; the shard only groups them.
package transforms
