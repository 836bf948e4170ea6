package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// hostile is text a terminal would act on: clear the screen, set the
// window title, ring the bell, return to the line start, a C1 CSI, a
// right-to-left override, a line separator, and a byte that is not UTF-8.
const hostile = "pos\x1b[2J\x1b]0;owned\a\rX\x7f\u009b31m\u202eevil\u2028\xff é 🛒\tend"

// safe reports the first byte of s a terminal would act on.
func safe(t *testing.T, s string) {
	t.Helper()
	for i, r := range s {
		if r != '\n' && r != '\t' && (unsafeRune(r) || r == '\ufffd' && s[i] == 0xff) {
			t.Fatalf("output has %U at byte %d: %q", r, i, s)
		}
	}
}

func TestEscapeWriter(t *testing.T) {
	for _, tt := range []struct {
		json bool
		in   string
		want string
	}{
		{false, hostile, `pos\x1b[2J\x1b]0;owned\x07\x0dX\x7f\u009b31m\u202eevil\u2028\xff é 🛒` + "\tend"},
		{true, hostile, `pos\u001b[2J\u001b]0;owned\u0007\u000dX\u007f\u009b31m\u202eevil\u2028\ufffd é 🛒` + "\tend"},
		{false, "\U000e0001 tag", `\U000e0001 tag`},
		{true, "\U000e0001 tag", `\udb40\udc01 tag`},
		{false, "cut \xe2\x82", `cut \xe2\x82`},
	} {
		// One byte per Write, so that every sequence is cut.
		var out bytes.Buffer
		w := newEscapeWriter(&out, tt.json)
		for i := range len(tt.in) {
			if n, err := w.Write([]byte{tt.in[i]}); n != 1 || err != nil {
				t.Fatal(n, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.want {
			t.Errorf("json=%v %q:\ngot  %s\nwant %s", tt.json, tt.in, out.String(), tt.want)
		}
		safe(t, out.String())
	}
}

// TestSQLEscapesControlCharacters: a source stored before validation
// refused control characters prints escaped in every format, and the JSON
// format still decodes to the stored value.
func TestSQLEscapesControlCharacters(t *testing.T) {
	ctx := context.Background()
	wh := filepath.Join(t.TempDir(), "wh")
	w, err := warehouse.Open(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	stored := strings.ToValidUTF8(hostile, "\ufffd")
	row := warehouse.AdjustmentRow{EventID: "e1", SKU: "SKU-1", LocationID: "S1", Reason: "SOLD", Quantity: -1,
		EventTime: at, Source: stored, Status: warehouse.StatusApplied, MessageID: "m1", IngestTime: at}
	if _, err := w.Write(ctx, warehouse.Rows([]warehouse.AdjustmentRow{row})); err != nil {
		t.Fatal(err)
	}
	q := "SELECT source, source AS \"a\x1b[31mb\" FROM adjustments"
	for _, format := range []string{"table", "csv", "json"} {
		out, _, err := runCLI(t, ctx, "sql", "--warehouse", wh, "--format", format, q)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		safe(t, out)
		if !strings.Contains(out, "pos") || !strings.Contains(out, `\u202eevil`) || !strings.Contains(out, "🛒") {
			t.Errorf("%s: %q", format, out)
		}
		if format != "json" {
			continue
		}
		var got []map[string]string
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0]["source"] != stored || got[0]["a\x1b[31mb"] != stored {
			t.Errorf("json: %v %q, want the stored source %q", err, got, stored)
		}
	}
}
