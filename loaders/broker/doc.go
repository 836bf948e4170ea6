// Package broker is the product's side of Pub/Sub: the topics,
// subscriptions and schemas it needs (Setup), the publishers of adjustments
// (Publisher), and the consumer that keeps stock from the topic (Consumer).
// It uses the official client, which honours PUBSUB_EMULATOR_HOST, so the
// same code runs against Pub/Sub and against the local emulator.
package broker
