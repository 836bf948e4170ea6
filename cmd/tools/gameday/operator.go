package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/inventory-events/inventory/internal/app/cli"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/rehearse"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// The operator's side of the fortnight: the configuration uploaded, the
// commands of the runbook, the events published and the release.

// configure writes the production configuration the runbook's step 1
// uploads (the starting stock and the thresholds) to where the deploy
// files name it.
func (g *game) configure(first civil.Date) error {
	g.snap = &snapshot.File{AsOf: first.In(time.UTC).Add(-time.Hour)}
	var th bytes.Buffer
	th.WriteString("sku,location_id,threshold\n")
	for _, s := range skus {
		for _, l := range locations {
			g.snap.Items = append(g.snap.Items, snapshot.Item{SKU: s, LocationID: l, OnHand: int64(30 + g.rng.IntN(40))})
		}
		fmt.Fprintf(&th, "%s,*,%d\n", s, 15)
	}
	fmt.Fprintf(&th, "%s,%s,%d\n", skus[1], locations[1], 25)
	for uri, content := range map[string][]byte{g.params["snapshot"]: snapshot.Marshal(g.snap), g.params["thresholds"]: th.Bytes()} {
		bucket, object, ok := strings.Cut(strings.TrimPrefix(uri, "gs://"), "/")
		if !ok || !strings.HasPrefix(uri, "gs://") {
			return fmt.Errorf("stream-flags.yaml: %q is not gs://BUCKET/OBJECT", uri)
		}
		g.st.gcs.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: object}, Content: content})
	}
	return nil
}

// inventory runs the operator's command (cmd/inventory's code, in this
// process) in the project, and returns its output.
func (g *game) inventory(args ...string) (string, error) {
	root := cli.NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--project", project}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// publishDay makes the day's events, publishes them with inventory publish
// (runbook step 8) and waits until the stream stored them all.
func (g *game) publishDay(d civil.Date) (int, error) {
	start := d.In(time.UTC)
	var evs []event.Adjustment
	for _, s := range skus {
		for _, l := range locations {
			for range 2 + g.rng.IntN(4) {
				g.seq++
				a := event.Adjustment{EventID: fmt.Sprintf("gd-%s-%04d", d, g.seq), SKU: s, LocationID: l,
					EventTime: start.Add(time.Duration(g.rng.IntN(86000)) * time.Second).UnixMicro()}
				switch r := g.rng.IntN(10); {
				case r < 6:
					a.Reason, a.Quantity = event.Sold, -int64(1+g.rng.IntN(5))
				case r < 8:
					a.Reason, a.Quantity = event.Received, int64(5+g.rng.IntN(20))
				case r < 9:
					a.Reason, a.Quantity = event.Damaged, -1
				default:
					a.Reason, a.Quantity = event.Counted, int64(10+g.rng.IntN(40))
				}
				evs = append(evs, a)
			}
		}
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"event_id", "event_time", "sku", "location_id", "reason", "quantity", "source"})
	for _, a := range evs {
		w.Write([]string{a.EventID, time.UnixMicro(a.EventTime).UTC().Format(time.RFC3339Nano), a.SKU, a.LocationID,
			a.Reason.String(), strconv.FormatInt(a.Quantity, 10), "gameday"})
	}
	w.Flush()
	path := filepath.Join(logDir, "events-"+d.String()+".csv")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return 0, err
	}
	if out, err := g.inventory("publish", "--format", "json", path); err != nil {
		return 0, fmt.Errorf("inventory publish: %w: %s", err, out)
	}
	g.events = append(g.events, evs...)
	return len(evs), g.waitStored(d)
}

// waitStored waits until every event of day d published so far is in
// adjustments.
func (g *game) waitStored(d civil.Date) error {
	want := map[string]bool{}
	prefix := "gd-" + d.String() + "-"
	for _, a := range g.events {
		if strings.HasPrefix(a.EventID, prefix) {
			want[a.EventID] = true
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := 0
		seen := map[string]bool{}
		for _, r := range g.st.bq.Rows(project, g.dataset(), "adjustments") {
			id, _ := r["event_id"].(string)
			if want[id] && !seen[id] {
				seen[id] = true
				got++
			}
		}
		if got == len(want) {
			return nil
		}
		if !g.stream.running() && g.stream.Starts > 0 {
			// Left to the caller (a failed job is relaunched there).
			if g.stream.exitedLoudly() {
				return nil
			}
			return fmt.Errorf("the stream exited (%v) with %d of %d events of %s stored", g.stream.err, got, len(want), d)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d events of %s stored after 3 minutes", got, len(want), d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (g *game) dataset() string {
	_, ds, _ := strings.Cut(strings.TrimPrefix(g.warehouse, "bq://"), ".")
	return ds
}

// release is the runbook's later release: the tables are the previous
// release's (daily_summary without a column this one writes), setup runs
// first with this release's code, then the stream is updated with the
// flags file and --update.
func (g *game) release() (string, error) {
	const column = "sold_28d"
	g.st.bq.DropColumn(project, g.dataset(), "daily_summary", column)
	out, err := g.inventory("setup", "--for-dataflow", "--warehouse", g.warehouse, "--bq-location", "EU")
	if err != nil {
		return "", fmt.Errorf("inventory setup: %w: %s", err, out)
	}
	added := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "daily_summary") && strings.Contains(l, column) {
			added = strings.TrimSpace(l)
		}
	}
	if added == "" {
		g.wrong = append(g.wrong, "the release's setup did not add daily_summary."+column+": "+oneLine(out))
	}
	// The runbook's update: the flags file with deploy/stream-renames.yaml
	// appended, and --update.
	fl, err := rehearse.ReadStreamFlags(g.root, streamFlagVars, "stream-renames.yaml")
	if err != nil {
		return "", err
	}
	fl["--update"] = nil
	args, err := rehearse.LauncherArgs(streamJobName, fl)
	if err != nil {
		return "", err
	}
	g.stream.stop()
	if err := g.stream.start(args); err != nil {
		return "", err
	}
	return fmt.Sprintf("setup first (%s), then the stream updated with the flags file, deploy/stream-renames.yaml appended, and --update (%d flags)", added, len(args)), nil
}
