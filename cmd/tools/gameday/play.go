package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	"google.golang.org/grpc/codes"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/event"
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

// playDay plays day i, date d: each day of the fortnight is one kind of
// day, played by its own step.
func (g *game) playDay(ctx context.Context, i int, d civil.Date) error {
	switch i {
	case 1:
		return g.firstNight(i, d)
	case 3:
		return g.refusedCalls(i, d)
	case 4:
		return g.thresholdChange(i, d)
	case 5:
		return g.closedDay(i, d)
	case 6:
		return g.missedNight(i, d)
	case 7:
		return g.backfillDay(i, d)
	case 8:
		return g.failedAppend(i, d)
	case 9:
		return g.failedNight(i, d)
	case 10:
		return g.releaseDay(i, d)
	default:
		return g.ordinaryNight(i, d)
	}
}

// publishAndNight publishes day d's events, then calls the trigger for d as
// Scheduler does; it returns the number of events and the night's line.
func (g *game) publishAndNight(d civil.Date) (int, string, error) {
	n, err := g.publishDay(d)
	if err != nil {
		return 0, "", err
	}
	night, err := g.night(d)
	if err != nil {
		return 0, "", err
	}
	return n, night, nil
}

// firstNight is the first night ever: no daily_summary, no snapshot
// parameter.
func (g *game) firstNight(i int, d civil.Date) error {
	n, night, err := g.publishAndNight(d)
	if err != nil {
		return err
	}
	g.day(i, d, "first night ever (no daily_summary, no snapshot parameter): %d events; %s", n, night)
	return nil
}

// refusedCalls calls the trigger without a token and with another
// account's token before Scheduler's call.
func (g *game) refusedCalls(i int, d civil.Date) error {
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
	return nil
}

// thresholdChange changes one key's threshold live with inventory
// thresholds set, and checks the stream stores the new one.
func (g *game) thresholdChange(i int, d civil.Date) error {
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
	return nil
}

// closedDay is a day with no adjustments: the night runs all the same.
func (g *game) closedDay(i int, d civil.Date) error {
	night, err := g.night(d)
	if err != nil {
		return err
	}
	g.day(i, d, "a day with no adjustments (store closed): 0 events; %s", night)
	return nil
}

// missedNight publishes the day's events, and no call reaches the trigger.
func (g *game) missedNight(i int, d civil.Date) error {
	n, err := g.publishDay(d)
	if err != nil {
		return err
	}
	g.day(i, d, "%d events; the night is missed (no call reaches the trigger)", n)
	return nil
}

// backfillDay backfills the missed night and this one through the trigger.
func (g *game) backfillDay(i int, d civil.Date) error {
	n, err := g.publishDay(d)
	if err != nil {
		return err
	}
	bf, err := g.backfill(d.AddDays(-1), d)
	if err != nil {
		return err
	}
	g.day(i, d, "%d events; backfill of the gap through the trigger: %s", n, bf)
	return nil
}

// failedAppend makes one batch meet a permanent BigQuery error: the
// stream's account lost its grant on the table for one append.
func (g *game) failedAppend(i int, d civil.Date) error {
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
	return nil
}

// failedNight denies the nightly job's account its queries for one
// attempt: the run fails, and the trigger says so (500), so Scheduler
// retries.
func (g *game) failedNight(i int, d civil.Date) error {
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
	return nil
}

// releaseDay ships the second release before the day's events.
func (g *game) releaseDay(i int, d civil.Date) error {
	rel, err := g.release()
	if err != nil {
		return err
	}
	n, night, err := g.publishAndNight(d)
	if err != nil {
		return err
	}
	g.day(i, d, "second release: %s; %d events; %s", rel, n, night)
	return nil
}

// ordinaryNight publishes the day's events and calls the trigger.
func (g *game) ordinaryNight(i int, d civil.Date) error {
	n, night, err := g.publishAndNight(d)
	if err != nil {
		return err
	}
	g.day(i, d, "ordinary night: %d events; %s", n, night)
	return nil
}
