// Package gcpfake holds in-process test fakes of the Google Cloud APIs the
// trigger calls: the Dataflow v1beta3 API (Flex Templates and Jobs) and Cloud
// Scheduler v1. They speak the real gRPC services, so tests drive the real
// client libraries over the wire, and they record requests for assertions.
package gcpfake
