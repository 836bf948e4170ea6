package warehouse

import (
	"fmt"
	"iter"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/inventory-events/inventory/internal/event"
)

// MaxPayloadBytes bounds the payload stored in a dead_letters row: one bad
// message of the 10 MB Pub/Sub allows must not make a warehouse request too
// large to send, which would fail its bundle on every retry. It is the bound
// of the dead-letter topic's messages too (event.MaxDeadLetterPayload).
const MaxPayloadBytes = event.MaxDeadLetterPayload

// TableRows is a batch of rows of one table, as Writers take them. Build it
// with Rows; the zero value is an empty batch of no table.
type TableRows struct {
	table *Table
	// rows are struct values of table.RowType: elements of a copy of the
	// caller's rows that the batch owns (addressable), so a row needs no
	// allocation of its own.
	rows []reflect.Value
}

// Rows returns rows as a batch of the table T belongs to. Dead letters are
// bounded here, before any backend sees them: Payload is cut to
// MaxPayloadBytes and PayloadBytes and PayloadSHA256 describe the original
// (rows already bounded keep their values). rows itself is not modified.
func Rows[T Row](rows []T) TableRows {
	own := slices.Clone(rows)
	boundAll(own)
	return TableRows{table: tableOf[T](), rows: elements(reflect.ValueOf(own))}
}

// AnyRows is Rows for rows whose type is known only at run time (a Beam
// sink's elements): each must be a row of the table called table, or a
// pointer to one.
func AnyRows(table string, rows []any) (TableRows, error) {
	t, err := TableByName(table)
	if err != nil {
		return TableRows{}, err
	}
	own := reflect.MakeSlice(reflect.SliceOf(t.RowType), len(rows), len(rows))
	for i, r := range rows {
		v := reflect.ValueOf(r)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if !v.IsValid() || v.Type() != t.RowType {
			return TableRows{}, fmt.Errorf("warehouse: table %s takes %v rows, got %T", table, t.RowType, r)
		}
		own.Index(i).Set(v)
	}
	boundAll(own.Interface())
	return TableRows{table: t, rows: elements(own)}, nil
}

// boundAll bounds the payloads of rows if they are dead letters.
func boundAll(rows any) {
	if dls, ok := rows.([]DeadLetterRow); ok {
		for i := range dls {
			BoundPayload(&dls[i])
		}
	}
}

// elements returns the elements of the slice s.
func elements(s reflect.Value) []reflect.Value {
	out := make([]reflect.Value, s.Len())
	for i := range out {
		out[i] = s.Index(i)
	}
	return out
}

// TypedChunks yields the rows of r in order as slices of at most size rows
// of T, T being the table's row type (it panics otherwise). Each row is
// copied without an allocation of its own; the slice is reused from one
// chunk to the next, so the caller must not keep it.
func TypedChunks[T Row](r TableRows, size int) iter.Seq[[]T] {
	if r.table != nil && r.table.RowType != reflect.TypeFor[T]() {
		panic(fmt.Sprintf("warehouse: TypedChunks[%v] of rows of table %s (%v)", reflect.TypeFor[T](), r.table.Name, r.table.RowType))
	}
	size = max(1, min(size, len(r.rows)))
	return func(yield func([]T) bool) {
		buf := make([]T, 0, size)
		for i, v := range r.rows {
			if v.CanAddr() {
				buf = append(buf, *v.Addr().Interface().(*T))
			} else {
				buf = append(buf, v.Interface().(T))
			}
			if len(buf) == size || i == len(r.rows)-1 {
				if !yield(buf) {
					return
				}
				buf = buf[:0]
			}
		}
	}
}

// BoundPayload truncates r.Payload to MaxPayloadBytes and records the
// original's length and SHA-256 in r.PayloadBytes and r.PayloadSHA256,
// unless r.PayloadSHA256 is already set (the row was bounded before).
func BoundPayload(r *DeadLetterRow) {
	if r.PayloadSHA256 != "" || r.Payload == nil {
		return
	}
	r.Payload, r.PayloadBytes, r.PayloadSHA256 = event.BoundPayload(r.Payload)
}

// Table returns the table of the rows; nil for the zero TableRows.
func (r TableRows) Table() *Table { return r.table }

// Len returns the number of rows.
func (r TableRows) Len() int { return len(r.rows) }

// Row returns row i as its struct (e.g. an AdjustmentRow).
func (r TableRows) Row(i int) any { return r.rows[i].Interface() }

// Values returns the columns of row i in the table's column order: nil for
// NULL, else string, int64, float64, bool, []byte or time.Time (UTC;
// midnight for DATE).
func (r TableRows) Values(i int) []any {
	t, v := r.table, r.rows[i]
	out := make([]any, len(t.Columns))
	for j, c := range t.Columns {
		f := v.Field(t.fields[c.Name])
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		switch c.Type {
		case typeString:
			out[j] = f.String()
		case TypeInteger:
			out[j] = f.Int()
		case TypeFloat:
			out[j] = f.Float()
		case TypeBoolean:
			out[j] = f.Bool()
		case TypeBytes:
			if !f.IsNil() {
				out[j] = f.Bytes()
			}
		case TypeTimestamp, TypeDate:
			out[j] = timeOf(f).UTC()
		default:
			panic(fmt.Sprintf("warehouse: table %s column %s: unknown type %s", t.Name, c.Name, c.Type))
		}
	}
	return out
}

// partitionDate returns the UTC day of row i's partition column.
func (r TableRows) partitionDate(i int) time.Time {
	v := timeOf(r.rows[i].Field(r.table.fields[r.table.PartitionColumn])).UTC()
	return time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
}

// timeOf returns the time.Time field f, without an allocation when f is
// addressable.
func timeOf(f reflect.Value) time.Time {
	if f.CanAddr() {
		return *f.Addr().Interface().(*time.Time)
	}
	return f.Interface().(time.Time)
}

// pick returns the rows at the given indexes, in that order.
func (r TableRows) pick(indexes []int) TableRows {
	out := TableRows{table: r.table, rows: make([]reflect.Value, len(indexes))}
	for i, j := range indexes {
		out.rows[i] = r.rows[j]
	}
	return out
}

// ByDate splits the rows by partition date, dates in order.
func (r TableRows) ByDate() ([]time.Time, map[time.Time]TableRows) {
	byDay := map[time.Time]TableRows{}
	for i := range r.rows {
		d := r.partitionDate(i)
		p := byDay[d]
		p.table = r.table
		p.rows = append(p.rows, r.rows[i])
		byDay[d] = p
	}
	days := make([]time.Time, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	return days, byDay
}
