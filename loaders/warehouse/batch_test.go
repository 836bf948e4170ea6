package warehouse

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func sampleAdjustments(n int) []AdjustmentRow {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	rows := make([]AdjustmentRow, n)
	for i := range rows {
		rows[i] = AdjustmentRow{EventID: fmt.Sprintf("e%d", i), SKU: "SKU-1", LocationID: "L1", Quantity: int64(i), EventTime: at}
	}
	return rows
}

// TestRowsBoundDeadLetters checks that Rows and AnyRows bound the payloads
// of dead letters, keep rows bounded before, and leave the caller's rows
// (and what a pointer row points to) as they were.
func TestRowsBoundDeadLetters(t *testing.T) {
	big := bytes.Repeat([]byte("x"), MaxPayloadBytes+1)
	in := []DeadLetterRow{
		{Reason: "r", Payload: big},
		{Reason: "r", Payload: []byte("kept"), PayloadBytes: 1 << 20, PayloadSHA256: "abc"},
		{Reason: "r"},
	}
	before := slices.Clone(in)
	byValue, err := AnyRows(DeadLetters, []any{in[0], in[1], in[2]})
	if err != nil {
		t.Fatal(err)
	}
	byPointer, err := AnyRows(DeadLetters, []any{&in[0], &in[1], &in[2]})
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range []TableRows{Rows(in), byValue, byPointer} {
		if !reflect.DeepEqual(in, before) {
			t.Fatal("the caller's rows were modified")
		}
		got := rows.Row(0).(DeadLetterRow)
		if len(got.Payload) != MaxPayloadBytes || got.PayloadBytes != int64(len(big)) || got.PayloadSHA256 == "" {
			t.Errorf("oversized payload: %d bytes kept, payload_bytes %d, sha %q", len(got.Payload), got.PayloadBytes, got.PayloadSHA256)
		}
		if got := rows.Row(1).(DeadLetterRow); !reflect.DeepEqual(got, in[1]) {
			t.Errorf("row bounded before became %+v", got)
		}
		if got := rows.Row(2).(DeadLetterRow); !reflect.DeepEqual(got, in[2]) {
			t.Errorf("row without payload became %+v", got)
		}
		var typed []any
		for c := range TypedChunks[DeadLetterRow](rows, 2) {
			for _, r := range c {
				typed = append(typed, r)
			}
		}
		if want := []any{rows.Row(0), rows.Row(1), rows.Row(2)}; !reflect.DeepEqual(typed, want) {
			t.Error("TypedChunks gave other rows than Row")
		}
	}
	// Once in the batch, the rows are the batch's own.
	rows := Rows(in)
	in[2].Reason = "changed"
	if rows.Row(2).(DeadLetterRow).Reason != "r" {
		t.Error("the batch shares its rows with the caller's slice")
	}
}

// TestTypedChunks checks that TypedChunks yields every row in order in
// chunks of the size asked, from addressable rows and from others, and
// stops when told to.
func TestTypedChunks(t *testing.T) {
	in := sampleAdjustments(2500)
	rows := Rows(in)
	var sizes []int
	var got []AdjustmentRow
	for c := range TypedChunks[AdjustmentRow](rows, 1024) {
		sizes = append(sizes, len(c))
		got = append(got, c...)
	}
	if !slices.Equal(sizes, []int{1024, 1024, 452}) || !reflect.DeepEqual(got, in) {
		t.Errorf("chunks of %v, rows equal: %v", sizes, reflect.DeepEqual(got, in))
	}
	// Rows picked out of order (as ByDate does) and values that are not
	// addressable.
	picked := rows.pick([]int{7, 3})
	loose := TableRows{table: rows.table, rows: []reflect.Value{reflect.ValueOf(in[5]), reflect.ValueOf(in[9])}}
	for _, c := range []struct {
		rows TableRows
		want []AdjustmentRow
	}{{picked, []AdjustmentRow{in[7], in[3]}}, {loose, []AdjustmentRow{in[5], in[9]}}} {
		var got []AdjustmentRow
		for chunk := range TypedChunks[AdjustmentRow](c.rows, 1) {
			got = append(got, chunk...)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("got %v, want %v", got, c.want)
		}
	}
	n := 0
	for range TypedChunks[AdjustmentRow](rows, 100) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("%d chunks after a break", n)
	}
	if c := slices.Collect(TypedChunks[AdjustmentRow](TableRows{}, 10)); len(c) != 0 {
		t.Errorf("%d chunks of no rows", len(c))
	}
	defer func() {
		if recover() == nil {
			t.Error("TypedChunks of another table's row type did not panic")
		}
	}()
	for range TypedChunks[AlertRow](rows, 10) {
	}
}

// TestRowsAllocations checks that building a batch, splitting it by date
// and reading it in chunks allocate per batch, not per row.
func TestRowsAllocations(t *testing.T) {
	in := sampleAdjustments(1000)
	anys := make([]any, len(in))
	for i := range in {
		anys[i] = in[i]
	}
	rows := Rows(in)
	// ByDate grows each day's slice by appending: some allocations, not
	// one a row.
	for _, c := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Rows", 5, func() { Rows(in) }},
		{"AnyRows", 5, func() {
			if _, err := AnyRows(Adjustments, anys); err != nil {
				t.Fatal(err)
			}
		}},
		{"ByDate", 25, func() { rows.ByDate() }},
		{"TypedChunks", 5, func() {
			for range TypedChunks[AdjustmentRow](rows, 256) {
			}
		}},
	} {
		if n := testing.AllocsPerRun(10, c.f); n > c.max {
			t.Errorf("%s of %d rows: %.0f allocations, want at most %.0f", c.name, len(in), n, c.max)
		}
	}
}
