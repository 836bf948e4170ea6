package ledger

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/inventory-events/inventory/internal/event"
)

// DefaultThreshold is the reorder threshold of a key that no rule names.
const DefaultThreshold = 10

// Wildcard in a thresholds file's location_id column means every location.
const Wildcard = "*"

// Thresholds finds the reorder threshold of a key: (sku, location_id), then
// (sku, *), then Default.
type Thresholds struct {
	ByKey   map[event.Key]int64
	BySKU   map[string]int64
	Default int64
}

// NewThresholds returns an empty rule set with default d.
func NewThresholds(d int64) *Thresholds {
	return &Thresholds{ByKey: map[event.Key]int64{}, BySKU: map[string]int64{}, Default: d}
}

// Lookup returns the threshold of k.
func (t *Thresholds) Lookup(k event.Key) int64 {
	if t == nil {
		return DefaultThreshold
	}
	if v, ok := t.ByKey[k]; ok {
		return v
	}
	if v, ok := t.BySKU[k.SKU]; ok {
		return v
	}
	return t.Default
}

// Rules returns the rules as rows of (sku, location_id or "*", threshold).
func (t *Thresholds) Rules() []Rule {
	var out []Rule
	for k, v := range t.ByKey {
		out = append(out, Rule{SKU: k.SKU, LocationID: k.LocationID, Threshold: v})
	}
	for s, v := range t.BySKU {
		out = append(out, Rule{SKU: s, LocationID: Wildcard, Threshold: v})
	}
	return out
}

// Rule is one line of a thresholds file.
type Rule struct {
	SKU        string
	LocationID string
	Threshold  int64
}

// Add adds one rule.
func (t *Thresholds) Add(r Rule) {
	if r.LocationID == Wildcard {
		t.BySKU[r.SKU] = r.Threshold
	} else {
		t.ByKey[event.Key{SKU: r.SKU, LocationID: r.LocationID}] = r.Threshold
	}
}

// ParseThresholds reads a CSV with the header sku,location_id,threshold.
// name is used in error messages.
func ParseThresholds(r io.Reader, name string, def int64) (*Thresholds, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 3
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("thresholds %s: header: %w", name, err)
	}
	header[0] = strings.TrimPrefix(header[0], "\uFEFF")
	if strings.Join(header, ",") != "sku,location_id,threshold" {
		return nil, fmt.Errorf("thresholds %s: header is %q, want sku,location_id,threshold", name, strings.Join(header, ","))
	}
	t := NewThresholds(def)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("thresholds %s: %w", name, err)
		}
		v, err := strconv.ParseInt(strings.TrimSpace(rec[2]), 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("thresholds %s:%d: threshold %q is not a whole number >= 0", name, line, rec[2])
		}
		sku, loc := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if sku == "" || loc == "" {
			return nil, fmt.Errorf("thresholds %s:%d: sku and location_id must not be empty", name, line)
		}
		t.Add(Rule{SKU: sku, LocationID: loc, Threshold: v})
	}
}
