package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/grpc/codes"

	"github.com/inventory-events/inventory/internal/app/cli"
	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/oracle"
	"github.com/inventory-events/inventory/internal/testkit/rehearse"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// days is how many days the fortnight plays; the last is yesterday.
const days = 12

// The keys of the fortnight, and the one whose threshold changes live.
var (
	skus      = []string{"SKU-01", "SKU-02", "SKU-03"}
	locations = []string{"STORE-1", "STORE-2"}
	changed   = event.Key{SKU: "SKU-01", LocationID: "STORE-1"}
)

// operatorFlags are the flags the operator's commands are given here, as
// the runbook (deploy/README.md) gives them; flags_test.go checks each
// against the runbook.
var operatorFlags = []string{"--project", "--for-dataflow", "--warehouse", "--bq-location", "--format"}

// game is the fortnight's state.
type game struct {
	root   string
	st     *stand
	ad     *adapter
	stream *streamJob
	t0     time.Time
	rng    *rand.Rand

	params    map[string]string // the stream's parameters, from stream-flags.yaml
	warehouse string
	snap      *snapshot.File
	events    []event.Adjustment // every valid event published
	seq       int

	played, nights, matched, surfaced int
	wrong                             []string // refusals answered as a success, and other broken promises
}

func (g *game) summary() string {
	return fmt.Sprintf("game-day: %d days played, %d/%d closing stock matches, %d failures surfaced, %d answered wrongly (%s)",
		g.played, g.matched, g.nights, g.surfaced, len(g.wrong), time.Since(g.t0).Round(time.Second))
}

func (g *game) ok() bool { return g.nights > 0 && g.matched == g.nights && len(g.wrong) == 0 }

// day prints the line of one day.
func (g *game) day(n int, d civil.Date, format string, args ...any) {
	g.played++
	fmt.Printf("[day %02d %s %6.1fs] %s\n", n, d, time.Since(g.t0).Seconds(), fmt.Sprintf(format, args...))
}

func (g *game) play(ctx context.Context) error {
	g.rng = rand.New(rand.NewPCG(25, 14))
	fl, err := rehearse.ReadStreamFlags(g.root, streamFlagVars)
	if err != nil {
		return err
	}
	g.params = rehearse.StringParams(fl)
	if err := rehearse.CheckTemplateParameters(g.root, "stream", g.params); err != nil {
		return fmt.Errorf("stream-flags.yaml: %w", err)
	}
	g.warehouse = g.params["warehouse"]
	today := civil.DateOf(clock.Now().UTC())
	first := today.AddDays(-days)
	if err := g.configure(first); err != nil {
		return err
	}

	// Step 1 of the runbook, then step 6: setup, and the stream launched
	// from stream-flags.yaml.
	out, err := g.inventory("setup", "--for-dataflow", "--warehouse", g.warehouse, "--bq-location", "EU")
	if err != nil {
		return fmt.Errorf("inventory setup: %w: %s", err, out)
	}
	args, err := rehearse.LauncherArgs(streamJobName, fl)
	if err != nil {
		return err
	}
	if err := g.stream.start(args); err != nil {
		return err
	}
	fmt.Printf("[setup      %6.1fs] inventory setup: %d lines; stream launched as stream-flags.yaml says (%d flags)\n",
		time.Since(g.t0).Seconds(), strings.Count(strings.TrimSpace(out), "\n")+1, len(args))

	// Before the first event: a night for the first day is refused (422),
	// never a 202.
	code, body, err := g.st.post("date="+first.String(), g.st.caller)
	if err != nil {
		return err
	}
	g.refusal("a night before any data", code, body, 422)

	for i := 1; i <= days; i++ {
		d := first.AddDays(i - 1)
		if err := g.playDay(ctx, i, d); err != nil {
			return fmt.Errorf("day %d (%s): %w", i, d, err)
		}
	}
	return nil
}

// playDay plays day i, date d.
func (g *game) playDay(ctx context.Context, i int, d civil.Date) error {
	switch i {
	case 1:
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "first night ever (no daily_summary, no snapshot parameter): %d events; %s", n, night)
	case 3:
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		code, body, err := g.st.post("date="+d.String(), "")
		if err != nil {
			return err
		}
		g.refusal("a call without a token", code, body, 401)
		code2, body2, err := g.st.post("date="+d.String(), "someone@"+project+".iam.gserviceaccount.com")
		if err != nil {
			return err
		}
		g.refusal("a token of another account", code2, body2, 403)
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "%d events; no token -> %d, another account's token -> %d; Scheduler's token: %s", n, code, code2, night)
	case 4:
		out, err := g.inventory("thresholds", "set", "--warehouse", g.warehouse, changed.SKU, changed.LocationID, "40")
		if err != nil {
			return fmt.Errorf("inventory thresholds set: %w: %s", err, out)
		}
		if !strings.Contains(out, "applied by the streaming job") {
			g.wrong = append(g.wrong, "thresholds set: the stream did not apply the change: "+oneLine(out))
		}
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		th, err := g.latestThreshold(changed)
		if err != nil {
			return err
		}
		if th != 40 {
			g.wrong = append(g.wrong, fmt.Sprintf("after the threshold change the stream stored threshold %d for %v, want 40", th, changed))
		}
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "inventory thresholds set %s %s 40: %s; stock_levels then carry %d; %d events; %s",
			changed.SKU, changed.LocationID, strings.TrimSpace(lastLine(out)), th, n, night)
	case 5:
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "a day with no adjustments (store closed): 0 events; %s", night)
	case 6:
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		g.day(i, d, "%d events; the night is missed (no call reaches the trigger)", n)
	case 7:
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		bf, err := g.backfill(d.AddDays(-1), d)
		if err != nil {
			return err
		}
		g.day(i, d, "%d events; backfill of the gap through the trigger: %s", n, bf)
	case 8:
		// One batch meets a permanent BigQuery error: the stream's account
		// lost its grant on the table for one append.
		g.st.bq.FailAppends(1, codes.PermissionDenied)
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		loud, tableErr := g.stream.takeErrors()
		fate := "the job went on"
		if !g.stream.running() {
			// Prism fails the job on a failed bundle (Dataflow would retry
			// the bundle, failing loudly each time, until the fix): the
			// operator fixes the grant and launches it again (runbook
			// step 6); the events it had not acknowledged come again.
			fate = "the job failed; relaunched after the fix"
			if err := g.stream.start(g.stream.lastArgs()); err != nil {
				return err
			}
			if err := g.waitStored(d); err != nil {
				return err
			}
		}
		if tableErr != "" {
			g.surfaced++
		} else {
			g.wrong = append(g.wrong, fmt.Sprintf("a permanent BigQuery error was not reported with the table and the fix (%d ERROR lines)", len(loud)))
		}
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "%d events; one append refused PERMISSION_DENIED: the stream reported %q (%d ERROR lines); %s; %s",
			n, tableErr, len(loud), fate, night)
	case 9:
		// The nightly job's account cannot run queries for one attempt:
		// the run fails, and the trigger says so (500), so Scheduler retries.
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		g.st.bq.FailQueries(1, "day_rows")
		code, body, err := g.st.post("date="+d.String(), g.st.caller)
		if err != nil {
			return err
		}
		g.refusal("a failed nightly run", code, body, 500)
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "%d events; the nightly job fails (BigQuery accessDenied) -> %d; Scheduler's retry: %s", n, code, night)
	case 10:
		rel, err := g.release()
		if err != nil {
			return err
		}
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "second release: %s; %d events; %s", rel, n, night)
	default:
		n, err := g.publishDay(d)
		if err != nil {
			return err
		}
		night, err := g.night(d)
		if err != nil {
			return err
		}
		g.day(i, d, "ordinary night: %d events; %s", n, night)
	}
	return nil
}

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

// night calls the trigger for d as Cloud Scheduler does, repeating the call
// while it answers 503 (the run still going), and checks the night's
// closing stock against the replay.
func (g *game) night(d civil.Date) (string, error) {
	deadline := time.Now().Add(6 * time.Minute)
	for {
		code, body, err := g.st.post("date="+d.String(), g.st.caller)
		if err != nil {
			return "", err
		}
		switch {
		case code == 503 && time.Now().Before(deadline):
			continue
		case code != 200:
			return "", fmt.Errorf("POST /v1/nightly?date=%s: %d %s", d, code, oneLine(body))
		}
		runs := g.ad.takeRuns()
		check, err := g.check(d)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("POST /v1/nightly -> 200 (%d Prism run%s); %s", len(runs), plural(len(runs)), check), nil
	}
}

// backfill runs from..to through the trigger's endpoint, repeating the call
// while it answers 202, and checks every day of it.
func (g *game) backfill(from, to civil.Date) (string, error) {
	q := "from=" + from.String() + "&to=" + to.String()
	calls := 0
	for deadline := time.Now().Add(8 * time.Minute); ; {
		code, body, err := g.st.post(q, g.st.caller)
		if err != nil {
			return "", err
		}
		calls++
		if code == 202 && time.Now().Before(deadline) {
			continue
		}
		if code != 200 {
			return "", fmt.Errorf("POST /v1/nightly?%s: %d %s", q, code, oneLine(body))
		}
		break
	}
	runs := g.ad.takeRuns()
	var checks []string
	for d := from; !d.After(to); d = d.AddDays(1) {
		c, err := g.check(d)
		if err != nil {
			return "", err
		}
		checks = append(checks, d.String()+": "+c)
	}
	return fmt.Sprintf("POST ?%s -> 200 after %d call%s (%d Prism runs); %s", q, calls, plural(calls), len(runs), strings.Join(checks, "; ")), nil
}

// check compares day d's daily_summary closing stock with the oracle's
// replay of the events published before the day's end.
func (g *game) check(d civil.Date) (string, error) {
	g.nights++
	end := d.AddDays(1).In(time.UTC).UnixMicro()
	var before []event.Adjustment
	for _, a := range g.events {
		if a.EventTime < end {
			before = append(before, a)
		}
	}
	_, want := oracle.Stock(before, g.snap)
	got := map[event.Key]int64{}
	for _, r := range g.st.bq.Rows(project, g.dataset(), "daily_summary") {
		if r["report_date"] != d {
			continue
		}
		k := event.Key{SKU: fmt.Sprint(r["sku"]), LocationID: fmt.Sprint(r["location_id"])}
		c, _ := r["closing_on_hand"].(int64)
		got[k] = c
	}
	var diff []string
	for k, w := range want {
		if c, ok := got[k]; !ok || c != w {
			diff = append(diff, fmt.Sprintf("%s@%s %v want %d", k.SKU, k.LocationID, got[k], w))
		}
	}
	if len(got) != len(want) {
		diff = append(diff, fmt.Sprintf("%d rows, want %d", len(got), len(want)))
	}
	if len(diff) > 0 {
		slices.Sort(diff)
		return "closing stock DIFFERS from the replay: " + strings.Join(diff, ", "), nil
	}
	g.matched++
	return fmt.Sprintf("closing stock %d/%d keys = replay", len(got), len(want)), nil
}

// refusal records a call that must be refused with want.
func (g *game) refusal(what string, code int, body string, want int) {
	if code >= 200 && code < 300 {
		g.wrong = append(g.wrong, fmt.Sprintf("%s was answered %d: %s", what, code, oneLine(body)))
		return
	}
	if code != want {
		g.wrong = append(g.wrong, fmt.Sprintf("%s was answered %d, want %d: %s", what, code, want, oneLine(body)))
		return
	}
	g.surfaced++
}

// latestThreshold is the threshold of k's latest stock_levels row.
func (g *game) latestThreshold(k event.Key) (int64, error) {
	var th int64
	var at time.Time
	found := false
	for _, r := range g.st.bq.Rows(project, g.dataset(), "stock_levels") {
		if r["sku"] != k.SKU || r["location_id"] != k.LocationID {
			continue
		}
		p, _ := r["processed_at"].(time.Time)
		if !found || !p.Before(at) {
			th, _ = r["threshold"].(int64)
			at, found = p, true
		}
	}
	if !found {
		return 0, errors.New("no stock_levels row of " + k.SKU + "@" + k.LocationID)
	}
	return th, nil
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
	fl, err := rehearse.ReadStreamFlags(g.root, streamFlagVars)
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
	return fmt.Sprintf("setup first (%s), then the stream updated with the flags file and --update (%d flags)", added, len(args)), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
