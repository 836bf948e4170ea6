// Package pubsubio is the streaming job's Pub/Sub I/O: a pull source that
// leaves acking to the sink and keeps its messages' leases meanwhile, the
// drain of the sources of this process, Dataflow's native read and write,
// and the Batch of messages they carry.
package pubsubio
