// Package synth generates deterministic synthetic adjustment streams in the
// CSV format of the contract: the shipped sample data comes from it, and so
// do the large streams of the benchmarks. The same Config always gives the
// same bytes.
package synth

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/ledger"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

// Config describes a stream.
type Config struct {
	Events    int
	SKUs      int
	Locations int
	Seed      uint64
	Start     time.Time     // first event time; the snapshot is as of Start
	Span      time.Duration // events are spread over [Start, Start+Span)
	// InvalidEvery makes every n-th row invalid (0: none).
	InvalidEvery int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.SKUs <= 0 {
		c.SKUs = 20
	}
	if c.Locations <= 0 {
		c.Locations = 3
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	}
	if c.Span <= 0 {
		c.Span = 24 * time.Hour
	}
}

// SKU and Location name the generated keys.
func SKU(i int) string { return fmt.Sprintf("SKU-%05d", i+1) }
func Location(i int) string {
	return [...]string{"STORE-001", "STORE-002", "WH-001", "STORE-003", "STORE-004", "WH-002"}[i%6] + suffix(i)
}

func suffix(i int) string {
	if i < 6 {
		return ""
	}
	return fmt.Sprintf("-%d", i/6)
}

// threshold returns the reorder threshold generated for SKU i.
func threshold(i int) int64 { return int64(8 + (i%4)*4) }

// thresholds returns the rules the generator assumes: one per SKU for every
// location, and a tighter one for the warehouse of every fifth SKU.
func thresholds(c Config) *ledger.Thresholds {
	c.Defaults()
	t := ledger.NewThresholds(ledger.DefaultThreshold)
	for i := range c.SKUs {
		t.Add(ledger.Rule{SKU: SKU(i), LocationID: ledger.Wildcard, Threshold: threshold(i)})
		if i%5 == 0 && c.Locations > 2 {
			t.Add(ledger.Rule{SKU: SKU(i), LocationID: Location(2), Threshold: threshold(i) * 2})
		}
	}
	return t
}

// WriteThresholds writes the rules of c as a thresholds CSV.
func WriteThresholds(w io.Writer, c Config) error {
	rules := thresholds(c).Rules()
	slices.SortFunc(rules, func(a, b ledger.Rule) int {
		if a.SKU != b.SKU {
			if a.SKU < b.SKU {
				return -1
			}
			return 1
		}
		if a.LocationID < b.LocationID {
			return -1
		}
		if a.LocationID > b.LocationID {
			return 1
		}
		return 0
	})
	cw := csv.NewWriter(w)
	cw.Write([]string{"sku", "location_id", "threshold"})
	for _, r := range rules {
		cw.Write([]string{r.SKU, r.LocationID, fmt.Sprint(r.Threshold)})
	}
	cw.Flush()
	return cw.Error()
}

// Snapshot returns the starting stock of c (every key, as of Start).
func Snapshot(c Config) *snapshot.File {
	c.Defaults()
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	f := &snapshot.File{AsOf: c.Start}
	for s := range c.SKUs {
		for l := range c.Locations {
			f.Items = append(f.Items, snapshot.Item{SKU: SKU(s), LocationID: Location(l), OnHand: int64(10 + rng.IntN(40))})
		}
	}
	return f
}

// Generate writes c.Events rows (header first) to w.
func Generate(w io.Writer, c Config) error {
	c.Defaults()
	rng := rand.New(rand.NewPCG(c.Seed, 0xadd))
	nkeys := c.SKUs * c.Locations
	stock := make([]int64, nkeys)
	for i, it := range Snapshot(c).Items {
		stock[i] = it.OnHand
	}
	// Times: sorted uniform offsets, so the stream is in event-time order
	// as a feed mostly is.
	offs := make([]int64, c.Events)
	for i := range offs {
		offs[i] = rng.Int64N(int64(c.Span / time.Millisecond))
	}
	slices.Sort(offs)
	bw := bufio.NewWriterSize(w, 256<<10)
	cw := csv.NewWriter(bw)
	if err := event.WriteCSVHeader(cw); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	th := thresholds(c)
	for i := range c.Events {
		// A few hot keys: half the traffic goes to a tenth of the keys.
		k := rng.IntN(nkeys)
		if rng.IntN(2) == 0 {
			k = rng.IntN(max(1, nkeys/10))
		}
		sku, loc := k/c.Locations, k%c.Locations
		a := event.Adjustment{
			EventID:    fmt.Sprintf("evt-%d-%08d", c.Seed, i+1),
			SKU:        SKU(sku),
			LocationID: Location(loc),
			EventTime:  c.Start.Add(time.Duration(offs[i]) * time.Millisecond).UnixMicro(),
			Source:     sourcePOS,
		}
		pickMovement(rng, &a, stock[k], th.Lookup(a.Key()))
		if c.InvalidEvery > 0 && (i+1)%c.InvalidEvery == 0 {
			if err := writeInvalid(cw, &a, i/c.InvalidEvery); err != nil {
				return err
			}
			continue
		}
		if a.Reason == event.Counted {
			stock[k] = a.Quantity
		} else {
			stock[k] += a.Quantity
		}
		if err := event.WriteCSV(cw, &a); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// The sources of the generated events.
const (
	sourcePOS        = "pos"
	sourceWMS        = "wms"
	sourceEcom       = "ecom"
	sourceCycleCount = "cycle-count"
)

// pickMovement draws a's reason, quantity and source: mostly sales and
// receipts, a reorder when the key is below its threshold, counts near the
// stock on hand.
func pickMovement(rng *rand.Rand, a *event.Adjustment, onHand, threshold int64) {
	switch p := rng.IntN(100); {
	case onHand < threshold && p < 30: // reorder arrives
		a.Reason, a.Quantity, a.Source = event.Received, int64(20+rng.IntN(40)), sourceWMS
	case p < 55:
		a.Reason, a.Quantity = event.Sold, -int64(1+rng.IntN(4))
	case p < 65:
		a.Reason, a.Quantity, a.Source = event.Received, int64(5+rng.IntN(30)), sourceWMS
	case p < 72:
		a.Reason, a.Quantity, a.Source = event.Returned, int64(1+rng.IntN(2)), sourceEcom
	case p < 76:
		a.Reason, a.Quantity = event.Damaged, -int64(1+rng.IntN(2))
	case p < 80:
		a.Reason, a.Quantity, a.Source = event.Adjusted, int64(rng.IntN(5)-2), sourceWMS
		if a.Quantity == 0 {
			a.Quantity = 1
		}
	case p < 85:
		a.Reason, a.Quantity, a.Source = event.Counted, max(0, onHand+int64(rng.IntN(5)-2)), sourceCycleCount
	case p < 93:
		a.Reason, a.Quantity, a.Source = event.TransferIn, int64(2+rng.IntN(10)), sourceWMS
	default:
		a.Reason, a.Quantity, a.Source = event.TransferOut, -int64(1+rng.IntN(6)), sourceWMS
	}
}

// writeInvalid writes a row that breaks one rule, cycling through the kinds.
func writeInvalid(cw *csv.Writer, a *event.Adjustment, n int) error {
	row := []string{a.EventID, event.FormatTime(a.EventTime), a.SKU, a.LocationID, a.Reason.String(), fmt.Sprint(a.Quantity), a.Source}
	switch n % 6 {
	case 0:
		row[4] = "STOLEN"
	case 1:
		row[2] = ""
	case 2:
		row[5] = "three"
	case 3:
		row[1] = ""
	case 4:
		row[4], row[5] = "SOLD", "4" // a sale must be negative
	case 5:
		row[4], row[5] = "COUNTED", "-5"
	}
	if err := cw.Write(row); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}
