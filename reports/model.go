package reports

import (
	"cmp"
	"slices"
	"time"
)

// Row is the summary of one (sku, location_id) on the report date. Its JSON
// names are the daily_summary columns. The day's quantities are signed as in
// the adjustments (sold, damaged and transfer_out are <= 0); the trends
// (sold_7d, sold_28d) are units sold, positive, and UnitsSold is the day's.
type Row struct {
	SKU               string  `json:"sku"`
	LocationID        string  `json:"location_id"`
	OpeningOnHand     int64   `json:"opening_on_hand"`
	ClosingOnHand     int64   `json:"closing_on_hand"`
	Received          int64   `json:"received"`
	Sold              int64   `json:"sold"`
	Returned          int64   `json:"returned"`
	Damaged           int64   `json:"damaged"`
	Adjusted          int64   `json:"adjusted"`
	TransferIn        int64   `json:"transfer_in"`
	TransferOut       int64   `json:"transfer_out"`
	CountedDelta      int64   `json:"counted_delta"`
	NetChange         int64   `json:"net_change"`
	MinOnHand         int64   `json:"min_on_hand"`
	Events            int64   `json:"events"`
	AlertsRaised      int64   `json:"alerts_raised"`
	MinutesOutOfStock float64 `json:"minutes_out_of_stock"`
	// DaysOfCover is how long the closing stock lasts at the key's average
	// daily units sold over the 28 days ending with the report date (over
	// the days of those since the key's first data, while the data is
	// shorter); nil when nothing was sold. Never negative.
	DaysOfCover     *float64 `json:"days_of_cover"`
	Threshold       int64    `json:"threshold"`
	StreamingOnHand *int64   `json:"streaming_on_hand"`
	Reconciled      bool     `json:"reconciled"`
	// Sold7d and Sold28d are the units sold (positive) in the 7 and 28 days
	// ending with the report date.
	Sold7d  int64 `json:"sold_7d"`
	Sold28d int64 `json:"sold_28d"`
}

// StreamCompared reports whether the report had a streaming stock to
// reconcile with: false for a run on a CSV alone, whose keys are then all
// unreconciled without a stream to disagree with.
func (r *Report) StreamCompared() bool { return r.Totals.StreamKeys > 0 }

// UnitsSold is the positive number of units sold on the day.
func (r *Row) UnitsSold() int64 { return -r.Sold }

// Shortfall is how many units the key is below its threshold (0 if none).
func (r *Row) Shortfall() int64 { return max(0, r.Threshold-r.ClosingOnHand) }

// Out reports whether the key closed out of stock (on-hand <= 0).
func (r *Row) Out() bool { return r.ClosingOnHand <= 0 }

// below reports whether the key closed below its threshold, out of stock
// included.
func (r *Row) below() bool { return r.ClosingOnHand < r.Threshold }

// TrendDays is how many days a trend looks back over.
const TrendDays = 28

// Day is the whole of one report date, for the trend chart: replayed from
// the warehouse's adjustments for the days before the report date (never
// read from earlier reports), from the rows for the report date itself.
type Day struct {
	Date string `json:"date"` // YYYY-MM-DD
	// Reported is false for a day of the window before the warehouse's
	// data (no key had a known stock).
	Reported  bool  `json:"reported"`
	Keys      int64 `json:"keys"`
	UnitsSold int64 `json:"units_sold"`
	// KeysBelow counts keys that closed below threshold, out of stock
	// included; KeysOut those that closed at or below zero.
	KeysBelow int64 `json:"keys_below_threshold"`
	KeysOut   int64 `json:"keys_out_of_stock"`
}

// Point is the on-hand of a key from Time on.
type Point struct {
	Time   time.Time `json:"time"`
	OnHand int64     `json:"on_hand"`
}

// Series is the on-hand of one key over the report day, as a step function:
// the opening at the start of the day, then one point per change.
type Series struct {
	SKU        string  `json:"sku"`
	LocationID string  `json:"location_id"`
	Threshold  int64   `json:"threshold"`
	Points     []Point `json:"points"`
}

// Totals add up the rows.
type Totals struct {
	Keys              int64   `json:"keys"`
	SKUs              int64   `json:"skus"`
	Locations         int64   `json:"locations"`
	Events            int64   `json:"events"`
	OpeningOnHand     int64   `json:"opening_on_hand"`
	ClosingOnHand     int64   `json:"closing_on_hand"`
	Received          int64   `json:"received"`
	Sold              int64   `json:"sold"`
	Returned          int64   `json:"returned"`
	Damaged           int64   `json:"damaged"`
	Adjusted          int64   `json:"adjusted"`
	TransferIn        int64   `json:"transfer_in"`
	TransferOut       int64   `json:"transfer_out"`
	CountedDelta      int64   `json:"counted_delta"`
	NetChange         int64   `json:"net_change"`
	AlertsRaised      int64   `json:"alerts_raised"`
	KeysOutOfStock    int64   `json:"keys_out_of_stock"`    // closing <= 0
	KeysStockedOut    int64   `json:"keys_stocked_out"`     // out at some time of the day
	KeysBelow         int64   `json:"keys_below_threshold"` // closing < threshold, out of stock included
	MinutesOutOfStock float64 `json:"minutes_out_of_stock"`
	// Mismatches counts the rows not reconciled: the keys whose batch
	// closing differs from the streaming stock, or that the stream never
	// saw although they had events. StreamKeys counts the keys that have a
	// streaming stock; 0 means no stream ran over this data (a run on a
	// CSV alone): there was nothing to compare with, and Mismatches is
	// every key with events (StreamCompared).
	Mismatches int64 `json:"mismatches"`
	StreamKeys int64 `json:"stream_keys"`
	// Trends: units sold (positive) in the 7 days ending with the report
	// date, in the 7 days before those, and the change from one to the
	// other in percent (nil when nothing was sold in the earlier week).
	// TrendDays is how many of the 28 days ending with the report date
	// have data: the trends are complete at 28.
	Sold7d     int64    `json:"sold_7d"`
	SoldPrev7d int64    `json:"sold_prev_7d"`
	SoldWoWPct *float64 `json:"sold_wow_pct"`
	Sold28d    int64    `json:"sold_28d"`
	TrendDays  int64    `json:"trend_days"`
}

// Movement is the units moved for one reason on the day.
type Movement struct {
	Reason string `json:"reason"`
	Units  int64  `json:"units"` // signed sum
}

// Report is the nightly summary of one date.
type Report struct {
	Date        string     `json:"report_date"` // YYYY-MM-DD
	TimeZone    string     `json:"time_zone"`
	DayStart    time.Time  `json:"day_start"`
	DayEnd      time.Time  `json:"day_end"`
	RunID       string     `json:"run_id"`
	GeneratedAt time.Time  `json:"generated_at"`
	Totals      Totals     `json:"totals"`
	ByReason    []Movement `json:"movements_by_reason"`
	// TopMovers are the keys that sold the most units, then by |net change|.
	TopMovers []Row `json:"top_movers"`
	// StockOuts are the keys out of stock at some time of the day, longest first.
	StockOuts []Row `json:"stock_outs"`
	// BelowThreshold are the keys that closed below threshold, out of
	// stock included, most urgent first: out of stock first, then by days
	// of cover (unknown last), then by shortfall.
	BelowThreshold []Row `json:"below_threshold"`
	// Mismatches are the keys whose batch closing differs from the streaming stock.
	Mismatches []Row    `json:"mismatches"`
	Charts     []Series `json:"charts"`
	// Days are the 28 days ending with the report date, oldest first.
	Days []Day `json:"days"`
	// Rows are every key, by sku then location.
	Rows []Row `json:"rows"`
}

// Meta is what a report needs besides its rows.
type Meta struct {
	Date             string
	TimeZone         string
	DayStart, DayEnd time.Time
	RunID            string
	GeneratedAt      time.Time
	// TopN caps the lists of the report (default 10); the rows are complete.
	TopN int
	// History are the days before the report date with data (any order;
	// days outside the trend window are ignored).
	History []Day
}

// New builds the report of rows (any order; rows is sorted in place) with
// charts for the most affected keys.
func New(m Meta, rows []Row, charts []Series) *Report {
	if m.TopN <= 0 {
		m.TopN = 10
	}
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.LocationID, b.LocationID))
	})
	r := &Report{Date: m.Date, TimeZone: m.TimeZone, DayStart: m.DayStart.UTC(), DayEnd: m.DayEnd.UTC(),
		RunID: m.RunID, GeneratedAt: m.GeneratedAt.UTC(), Rows: rows}
	t := &r.Totals
	r.addRows(rows)
	r.ByReason = []Movement{
		{"RECEIVED", t.Received}, {"SOLD", t.Sold}, {"RETURNED", t.Returned}, {"DAMAGED", t.Damaged},
		{"ADJUSTED", t.Adjusted}, {"TRANSFER_IN", t.TransferIn}, {"TRANSFER_OUT", t.TransferOut},
		{"COUNTED", t.CountedDelta},
	}
	slices.SortStableFunc(r.StockOuts, func(a, b Row) int {
		return cmp.Or(-cmp.Compare(a.MinutesOutOfStock, b.MinutesOutOfStock), cmp.Compare(a.ClosingOnHand, b.ClosingOnHand))
	})
	slices.SortStableFunc(r.BelowThreshold, urgency)
	movers := slices.Clone(rows)
	slices.SortStableFunc(movers, func(a, b Row) int {
		return cmp.Or(-cmp.Compare(a.UnitsSold(), b.UnitsSold()), -cmp.Compare(abs(a.NetChange), abs(b.NetChange)))
	})
	movers = slices.DeleteFunc(movers, func(x Row) bool { return x.Events == 0 })
	r.TopMovers = movers[:min(len(movers), m.TopN)]
	slices.SortFunc(charts, func(a, b Series) int {
		return cmp.Or(cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.LocationID, b.LocationID))
	})
	r.Charts = charts
	r.Days = days(m, r)
	for i, d := range r.Days {
		if d.Reported {
			t.TrendDays++
		}
		if i >= len(r.Days)-14 && i < len(r.Days)-7 {
			t.SoldPrev7d += d.UnitsSold
		}
	}
	if t.SoldPrev7d > 0 {
		pct := 100 * float64(t.Sold7d-t.SoldPrev7d) / float64(t.SoldPrev7d)
		t.SoldWoWPct = &pct
	}
	return r
}

// addRows adds rows to the totals, and the stocked-out, below-threshold
// and mismatched ones to their lists.
func (r *Report) addRows(rows []Row) {
	t := &r.Totals
	skus, locs := map[string]bool{}, map[string]bool{}
	for i := range rows {
		x := &rows[i]
		skus[x.SKU], locs[x.LocationID] = true, true
		t.Keys++
		t.Events += x.Events
		t.OpeningOnHand += x.OpeningOnHand
		t.ClosingOnHand += x.ClosingOnHand
		t.Received += x.Received
		t.Sold += x.Sold
		t.Returned += x.Returned
		t.Damaged += x.Damaged
		t.Adjusted += x.Adjusted
		t.TransferIn += x.TransferIn
		t.TransferOut += x.TransferOut
		t.CountedDelta += x.CountedDelta
		t.NetChange += x.NetChange
		t.AlertsRaised += x.AlertsRaised
		t.MinutesOutOfStock += x.MinutesOutOfStock
		if x.ClosingOnHand <= 0 {
			t.KeysOutOfStock++
		}
		if x.MinutesOutOfStock > 0 {
			t.KeysStockedOut++
			r.StockOuts = append(r.StockOuts, *x)
		}
		if x.below() {
			t.KeysBelow++
			r.BelowThreshold = append(r.BelowThreshold, *x)
		}
		t.Sold7d += x.Sold7d
		t.Sold28d += x.Sold28d
		if x.StreamingOnHand != nil {
			t.StreamKeys++
		}
		if !x.Reconciled {
			t.Mismatches++
			r.Mismatches = append(r.Mismatches, *x)
		}
	}
	t.SKUs, t.Locations = int64(len(skus)), int64(len(locs))
}

// days returns the trend window of r: the 28 days ending with its date,
// from m.History and r itself.
func days(m Meta, r *Report) []Day {
	end, err := time.Parse(time.DateOnly, m.Date)
	if err != nil {
		return nil
	}
	known := map[string]Day{}
	for _, d := range m.History {
		known[d.Date] = d
	}
	out := make([]Day, TrendDays)
	for i := range out {
		date := end.AddDate(0, 0, i-TrendDays+1).Format(time.DateOnly)
		d, ok := known[date]
		d.Date, d.Reported = date, ok
		out[i] = d
	}
	t := r.Totals
	out[TrendDays-1] = Day{Date: m.Date, Reported: true, Keys: t.Keys, UnitsSold: -t.Sold,
		KeysBelow: t.KeysBelow, KeysOut: t.KeysOutOfStock}
	return out
}

// urgency orders keys below threshold, most urgent first: out of stock
// (the one with the largest shortfall first), then by days of cover
// (keys that sold nothing last), then by shortfall, then by key.
func urgency(a, b Row) int {
	if c := -cmp.Compare(boolInt(a.Out()), boolInt(b.Out())); c != 0 {
		return c
	}
	if !a.Out() {
		switch {
		case a.DaysOfCover != nil && b.DaysOfCover == nil:
			return -1
		case a.DaysOfCover == nil && b.DaysOfCover != nil:
			return 1
		case a.DaysOfCover != nil:
			if c := cmp.Compare(*a.DaysOfCover, *b.DaysOfCover); c != 0 {
				return c
			}
		}
	}
	return cmp.Or(-cmp.Compare(a.Shortfall(), b.Shortfall()), -cmp.Compare(a.Sold28d, b.Sold28d),
		cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.LocationID, b.LocationID))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// severity of a chart candidate: how badly its day went. Larger is worse.
// Keys are ranked by minutes out of stock, then alerts, then how far the
// lowest on-hand fell below the threshold.
func severity(r *Row) [3]float64 {
	return [3]float64{r.MinutesOutOfStock, float64(r.AlertsRaised), float64(r.Threshold - r.MinOnHand)}
}

// MoreAffected reports whether a's day went worse than b's (ties by key).
func MoreAffected(a, b *Row) bool {
	sa, sb := severity(a), severity(b)
	for i := range sa {
		if sa[i] != sb[i] {
			return sa[i] > sb[i]
		}
	}
	if a.SKU != b.SKU {
		return a.SKU < b.SKU
	}
	return a.LocationID < b.LocationID
}

// Affected reports whether a key's day deserves a chart: it ran out, raised
// an alert or dipped below its threshold.
func Affected(r *Row) bool {
	return r.MinutesOutOfStock > 0 || r.AlertsRaised > 0 || r.MinOnHand < r.Threshold
}
