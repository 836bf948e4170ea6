// Package localstack runs the product's parts in one process for the demo
// and for `inventory up`: the local Pub/Sub, the streaming job on an
// in-process Prism, the trigger service with a local launcher of the nightly
// job, and the local cron.
package localstack
