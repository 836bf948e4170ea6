package main

import (
	"context"
	"fmt"
	"os"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// appendResult appends the throughput phase's figures to a CSV file.
func appendResult(path string, keys, events int, jobRate, baseRate, jobPeak, basePeak float64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		fmt.Fprintln(f, "keys,events,job_events_per_s,baseline_events_per_s,ratio,job_peak_rss_mib,baseline_peak_rss_mib")
	}
	ratio := 0.0
	if baseRate > 0 {
		ratio = jobRate / baseRate
	}
	fmt.Fprintf(f, "%d,%d,%.0f,%.0f,%.2f,%.0f,%.0f\n", keys, events, jobRate, baseRate, ratio, jobPeak, basePeak)
	if err := f.Close(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

func loadRef(ctx context.Context, thPath, snapPath string) (*ledger.Thresholds, *snapshot.File, error) {
	f, err := os.Open(thPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	th, err := ledger.ParseThresholds(f, thPath, ledger.DefaultThreshold)
	if err != nil {
		return nil, nil, err
	}
	snap, err := snapshot.Read(ctx, snapPath)
	return th, snap, err
}

// cancelJobs cancels the Prism jobs and waits for Execute to return.
func cancelJobs(ctx context.Context, done chan error) error {
	conn, err := grpc.NewClient(*jobopts.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial prism: %w", err)
	}
	defer conn.Close()
	js := jobpb.NewJobServiceClient(conn)
	jobs, err := js.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		return fmt.Errorf("prism GetJobs: %w", err)
	}
	for _, j := range jobs.GetJobInfo() {
		js.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.GetJobId()})
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	return nil
}
