package ledger

import (
	"strings"
	"testing"
)

func TestReevaluate(t *testing.T) {
	for _, c := range []struct {
		onHand, before, after int64
		from                  Severity
		alert                 bool
		to                    Severity
	}{
		{30, 10, 40, OK, true, Low},           // raised above the stock
		{30, 40, 20, Low, true, OK},           // lowered below it: RECOVERED
		{30, 10, 20, OK, false, OK},           // still above
		{0, 10, 40, Out, false, Out},          // out stays out
		{5, 10, 5, Low, true, OK},             // on_hand == threshold is OK
		{30, 10, 40, Unknown, false, Unknown}, // no stock yet: left alone
	} {
		s := &State{OnHand: c.onHand, Severity: c.from}
		r := s.Reevaluate(c.after)
		if r.Alert != c.alert || s.Severity != c.to || r.OnHand != c.onHand || r.Changed() {
			t.Errorf("on_hand %d, %v, threshold %d -> %d: alert %v, severity %v; want alert %v, %v",
				c.onHand, c.from, c.before, c.after, r.Alert, s.Severity, c.alert, c.to)
		}
		if c.alert && (r.From != c.from || r.To != c.to) {
			t.Errorf("alert %v -> %v, want %v -> %v", r.From, r.To, c.from, c.to)
		}
	}
}

func TestChangeValidation(t *testing.T) {
	for _, c := range []struct{ in, wantErr string }{
		{"40", ""}, {"0", ""}, {"-5", `"-5"`}, {"ten", `"ten"`}, {"1e3", `"1e3"`}, {"2000000000", `"2000000000"`},
	} {
		_, err := ParseThreshold(c.in)
		if (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("ParseThreshold(%q) = %v, want an error naming %s", c.in, err, c.wantErr)
		}
	}
	ok := Change{ID: "c1", SKU: "SKU-1", LocationID: Wildcard, Threshold: 5, At: 1}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid change: %v", err)
	}
	for _, bad := range []Change{
		{ID: "c1", SKU: "SKU 1", LocationID: "L", Threshold: 5, At: 1},
		{ID: "c1", SKU: "", LocationID: "L", Threshold: 5, At: 1},
		{ID: "c1", SKU: "S", LocationID: "L\x01", Threshold: 5, At: 1},
		{ID: "c1", SKU: "S", LocationID: "L", Threshold: -1, At: 1},
		{ID: "", SKU: "S", LocationID: "L", Threshold: 5, At: 1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
