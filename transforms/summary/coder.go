package summary

import (
	"errors"
	"math"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/reports"
)

// Summary and Gather travel between stages with compact binary coders, as
// part does: the one Gather of a day holds every key's row and is encoded
// and decoded several times on its way to the publish step (a combine's
// accumulators, then the publish step's side input), which with JSON cost
// a third of a second of CPU at 30,000 keys, on the job's critical path.
// Beam finds coder functions on workers by symbol name, so each type has
// named functions of its own.
func init() {
	beam.RegisterType(reflect.TypeFor[summary]())
	beam.RegisterCoder(reflect.TypeFor[summary](), encodeSummary, decodeSummary)
	beam.RegisterType(reflect.TypeFor[Gather]())
	beam.RegisterCoder(reflect.TypeFor[Gather](), encodeGather, decodeGather)
}

var (
	errCorruptSummary = errors.New("summary: corrupt encoded Summary")
	errCorruptGather  = errors.New("summary: corrupt encoded Gather")
)

func encodeSummary(v summary) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = appendRow(b, &v.Row)
	b = codec.AppendFlags(b, v.Series != nil)
	if v.Series != nil {
		b = appendSeries(b, v.Series)
	}
	b = codec.AppendVarint(b, v.Duplicates)
	b = codec.AppendVarint(b, v.Superseded)
	b = codec.AppendUvarint(b, uint64(len(v.Trend)))
	for _, t := range v.Trend {
		b = codec.AppendVarint(b, t.Sold)
		b = codec.AppendUvarint(b, uint64(t.Close))
	}
	return b, nil
}

func decodeSummary(b []byte) (summary, error) {
	d := codec.NewReader(b)
	v := summary{Row: readRow(d)}
	if codec.Flag(d.Uvarint(), 0) {
		s := readSeries(d)
		v.Series = &s
	}
	v.Duplicates, v.Superseded = d.Varint(), d.Varint()
	if n := d.Len(); n > 0 {
		v.Trend = make([]trendDay, n)
		for i := range v.Trend {
			v.Trend[i] = trendDay{Sold: d.Varint(), Close: Close(d.Uvarint())}
		}
	}
	if d.Done() != nil {
		return summary{}, errCorruptSummary
	}
	return v, nil
}

func encodeGather(v Gather) ([]byte, error) {
	b := make([]byte, 0, 64+len(v.Rows)*64)
	b = codec.AppendUvarint(b, uint64(len(v.Rows)))
	for i := range v.Rows {
		b = appendRow(b, &v.Rows[i])
	}
	b = codec.AppendUvarint(b, uint64(len(v.Charts)))
	for i := range v.Charts {
		b = appendRow(b, &v.Charts[i].Row)
		b = appendSeries(b, &v.Charts[i].Series)
	}
	b = codec.AppendVarint(b, v.Duplicates)
	b = codec.AppendVarint(b, v.Superseded)
	b = codec.AppendUvarint(b, uint64(len(v.Days)))
	for _, t := range v.Days {
		for _, x := range [...]int64{t.Keys, t.UnitsSold, t.KeysBelow, t.KeysOut} {
			b = codec.AppendVarint(b, x)
		}
	}
	return b, nil
}

func decodeGather(b []byte) (Gather, error) {
	d := codec.NewReader(b)
	var v Gather
	if n := d.Len(); n > 0 {
		v.Rows = make([]reports.Row, n)
		for i := range v.Rows {
			v.Rows[i] = readRow(d)
		}
	}
	if n := d.Len(); n > 0 {
		v.Charts = make([]Chart, n)
		for i := range v.Charts {
			v.Charts[i] = Chart{Row: readRow(d), Series: readSeries(d)}
		}
	}
	v.Duplicates, v.Superseded = d.Varint(), d.Varint()
	if n := d.Len(); n > 0 {
		v.Days = make([]DayTotals, n)
		for i := range v.Days {
			v.Days[i] = DayTotals{Keys: d.Varint(), UnitsSold: d.Varint(), KeysBelow: d.Varint(), KeysOut: d.Varint()}
		}
	}
	if d.Done() != nil {
		return Gather{}, errCorruptGather
	}
	return v, nil
}

// appendRow appends every field of r; readRow reads them back in the same
// order (TestRowCoderKeepsEveryField fails if a field is added to
// reports.Row and not here).
func appendRow(b []byte, r *reports.Row) []byte {
	b = codec.AppendString(b, r.SKU)
	b = codec.AppendString(b, r.LocationID)
	for _, v := range [...]int64{r.OpeningOnHand, r.ClosingOnHand, r.Received, r.Sold, r.Returned, r.Damaged,
		r.Adjusted, r.TransferIn, r.TransferOut, r.CountedDelta, r.NetChange, r.MinOnHand, r.Events,
		r.AlertsRaised, r.Threshold, r.Sold7d, r.Sold28d} {
		b = codec.AppendVarint(b, v)
	}
	b = appendFloat(b, r.MinutesOutOfStock)
	b = codec.AppendFlags(b, r.DaysOfCover != nil, r.StreamingOnHand != nil, r.Reconciled)
	if r.DaysOfCover != nil {
		b = appendFloat(b, *r.DaysOfCover)
	}
	if r.StreamingOnHand != nil {
		b = codec.AppendVarint(b, *r.StreamingOnHand)
	}
	return b
}

func readRow(d *codec.Reader) reports.Row {
	r := reports.Row{SKU: d.String(), LocationID: d.String()}
	for _, p := range [...]*int64{&r.OpeningOnHand, &r.ClosingOnHand, &r.Received, &r.Sold, &r.Returned, &r.Damaged,
		&r.Adjusted, &r.TransferIn, &r.TransferOut, &r.CountedDelta, &r.NetChange, &r.MinOnHand, &r.Events,
		&r.AlertsRaised, &r.Threshold, &r.Sold7d, &r.Sold28d} {
		*p = d.Varint()
	}
	r.MinutesOutOfStock = readFloat(d)
	flags := d.Uvarint()
	if codec.Flag(flags, 0) {
		c := readFloat(d)
		r.DaysOfCover = &c
	}
	if codec.Flag(flags, 1) {
		s := d.Varint()
		r.StreamingOnHand = &s
	}
	r.Reconciled = codec.Flag(flags, 2)
	return r
}

// appendSeries appends s; point times are kept to the nanosecond, in UTC
// (the replay makes them in UTC).
func appendSeries(b []byte, s *reports.Series) []byte {
	b = codec.AppendString(b, s.SKU)
	b = codec.AppendString(b, s.LocationID)
	b = codec.AppendVarint(b, s.Threshold)
	b = codec.AppendFlags(b, s.Points != nil)
	b = codec.AppendUvarint(b, uint64(len(s.Points)))
	for _, p := range s.Points {
		b = codec.AppendVarint(b, p.Time.UnixNano())
		b = codec.AppendVarint(b, p.OnHand)
	}
	return b
}

func readSeries(d *codec.Reader) reports.Series {
	s := reports.Series{SKU: d.String(), LocationID: d.String(), Threshold: d.Varint()}
	notNil := codec.Flag(d.Uvarint(), 0)
	if n := d.Len(); n > 0 || notNil {
		s.Points = make([]reports.Point, n)
		for i := range s.Points {
			s.Points[i] = reports.Point{Time: time.Unix(0, d.Varint()).UTC(), OnHand: d.Varint()}
		}
	}
	return s
}

func appendFloat(b []byte, f float64) []byte { return codec.AppendUvarint(b, math.Float64bits(f)) }

func readFloat(d *codec.Reader) float64 { return math.Float64frombits(d.Uvarint()) }
