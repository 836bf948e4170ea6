// Package pubsubemu is a local Pub/Sub broker that serves the Pub/Sub gRPC
// API (Publisher, Subscriber, SchemaService) to the official client through
// PUBSUB_EMULATOR_HOST. Unlike pstest it enforces schemas, keeps Pub/Sub's
// delivery semantics (ack deadlines, redelivery, dead letters, retention,
// ordering keys), is fast with large backlogs, and can persist to a directory.
package pubsubemu
