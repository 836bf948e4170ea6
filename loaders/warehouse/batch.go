package warehouse

import (
	"fmt"
	"reflect"
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
	rows  []reflect.Value // struct values of table.RowType
}

// Rows returns rows as a batch of the table T belongs to. Dead letters are
// bounded here, before any backend sees them: Payload is cut to
// MaxPayloadBytes and PayloadBytes and PayloadSHA256 describe the original
// (rows already bounded keep their values). rows itself is not modified.
func Rows[T Row](rows []T) TableRows {
	out := TableRows{table: tableOf[T](), rows: make([]reflect.Value, len(rows))}
	for i := range rows {
		out.rows[i] = bounded(reflect.ValueOf(rows[i]))
	}
	return out
}

// AnyRows is Rows for rows whose type is known only at run time (a Beam
// sink's elements): each must be a row of the table called table.
func AnyRows(table string, rows []any) (TableRows, error) {
	t, err := TableByName(table)
	if err != nil {
		return TableRows{}, err
	}
	out := TableRows{table: t, rows: make([]reflect.Value, len(rows))}
	for i, r := range rows {
		v := reflect.ValueOf(r)
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if !v.IsValid() || v.Type() != t.RowType {
			return TableRows{}, fmt.Errorf("warehouse: table %s takes %v rows, got %T", table, t.RowType, r)
		}
		out.rows[i] = bounded(v)
	}
	return out, nil
}

// bounded returns row with its payload bounded if it is a dead letter.
func bounded(row reflect.Value) reflect.Value {
	dl, ok := row.Interface().(DeadLetterRow)
	if !ok {
		return row
	}
	BoundPayload(&dl)
	return reflect.ValueOf(dl)
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
			out[j] = f.Interface().(time.Time).UTC()
		default:
			panic(fmt.Sprintf("warehouse: table %s column %s: unknown type %s", t.Name, c.Name, c.Type))
		}
	}
	return out
}

// partitionDate returns the UTC day of row i's partition column.
func (r TableRows) partitionDate(i int) time.Time {
	v := r.rows[i].Field(r.table.fields[r.table.PartitionColumn]).Interface().(time.Time).UTC()
	return time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
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
