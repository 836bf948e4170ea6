package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/civil"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/oracle"
)

// The night's side of the fortnight: the trigger called as Scheduler calls
// it, and what it left checked against the oracle's replay.

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
