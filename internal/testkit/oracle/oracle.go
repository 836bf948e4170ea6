// Package oracle computes final stock straight from the rules, the slow and
// obvious way: for each key, take the latest count (or the snapshot), add
// every distinct delta after it. Tests use it as the expected answer for
// whatever path the events took (consumer, streaming job, nightly job).
package oracle

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// Result is the oracle's view of a CSV: the final stock, and how many rows
// are valid (distinct event ids) and invalid.
type Result struct {
	Stock   map[event.Key]int64
	Valid   int
	Invalid int
}

// FromCSV reads a CSV of adjustments and applies the rules on top of start
// (nil: empty). now is the validation clock.
func FromCSV(path string, start *snapshot.File, now time.Time) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := event.NewCSVReader(f, path)
	if err != nil {
		return nil, err
	}
	var events []event.Adjustment
	res := &Result{}
	for {
		var a event.Adjustment
		err := r.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		var re *event.RowError
		if errors.As(err, &re) {
			res.Invalid++
			continue
		}
		if err != nil {
			return nil, err
		}
		if event.Validate(&a, now) != nil {
			res.Invalid++
			continue
		}
		events = append(events, a)
	}
	res.Valid, res.Stock = Stock(events, start)
	return res, nil
}

// Stock applies the rules to events (in any order, duplicates allowed) on
// top of start and returns the number of distinct event ids and the stock.
func Stock(events []event.Adjustment, start *snapshot.File) (int, map[event.Key]int64) {
	type count struct {
		t  int64
		id string
		q  int64
	}
	latest := map[event.Key]count{}
	if start != nil {
		for _, it := range start.Items {
			latest[it.Key()] = count{t: start.Time(it).UnixMicro(), q: it.OnHand}
		}
	}
	seen := map[event.Key]map[string]bool{}
	var distinct []event.Adjustment
	for _, a := range events {
		k := a.Key()
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		if seen[k][a.EventID] {
			continue
		}
		seen[k][a.EventID] = true
		distinct = append(distinct, a)
		if a.Reason != event.Counted {
			continue
		}
		c, ok := latest[k]
		if !ok || a.EventTime > c.t || a.EventTime == c.t && a.EventID > c.id {
			latest[k] = count{t: a.EventTime, id: a.EventID, q: a.Quantity}
		}
	}
	stock := map[event.Key]int64{}
	for k, c := range latest {
		stock[k] = c.q
	}
	for _, a := range distinct {
		k := a.Key()
		if a.Reason == event.Counted {
			continue
		}
		if c, ok := latest[k]; ok && a.EventTime <= c.t {
			continue
		}
		stock[k] += a.Quantity
	}
	return len(distinct), stock
}
