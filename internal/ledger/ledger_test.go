package ledger

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
)

var t0 = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

func ev(id string, r event.Reason, q int64, min int) *event.Adjustment {
	return &event.Adjustment{EventID: id, SKU: "SKU-1", LocationID: "STORE-1", Reason: r, Quantity: q,
		EventTime: t0.Add(time.Duration(min) * time.Minute).UnixMicro()}
}

func TestApplyRules(t *testing.T) {
	type step struct {
		a       *event.Adjustment
		outcome Outcome
		onHand  int64
		alert   string // "FROM>TO" or ""
	}
	tests := []struct {
		name     string
		snapshot *State
		steps    []step
	}{
		{"deltas add up from zero", nil, []step{
			{ev("e1", event.Received, 20, 1), Applied, 20, ""},
			{ev("e2", event.Sold, -5, 2), Applied, 15, ""},
			{ev("e3", event.Returned, 1, 3), Applied, 16, ""},
		}},
		{"first event LOW alerts without a snapshot", nil, []step{
			{ev("e1", event.Received, 3, 1), Applied, 3, "UNKNOWN>LOW"},
		}},
		{"a count replaces what came before it", FromSnapshot(50, t0.UnixMicro(), 10), []step{
			{ev("e1", event.Sold, -5, 10), Applied, 45, ""},
			{ev("e2", event.Counted, 40, 20), Applied, 40, ""},
			{ev("e3", event.Sold, -2, 30), Applied, 38, ""},
		}},
		{"a count arriving before older deltas", FromSnapshot(50, t0.UnixMicro(), 10), []step{
			{ev("c", event.Counted, 40, 20), Applied, 40, ""},
			{ev("e1", event.Sold, -5, 10), Superseded, 40, ""},
			{ev("e2", event.Sold, -2, 30), Applied, 38, ""},
			{ev("e3", event.Damaged, -1, 20), Superseded, 38, ""}, // at the count's time: included in it
		}},
		{"a count older than the latest count changes nothing", FromSnapshot(50, t0.UnixMicro(), 10), []step{
			{ev("c2", event.Counted, 40, 20), Applied, 40, ""},
			{ev("c1", event.Counted, 7, 10), Superseded, 40, ""},
		}},
		{"a delta older than the snapshot is recorded, not applied", FromSnapshot(50, t0.UnixMicro(), 10), []step{
			{ev("old", event.Sold, -5, -10), Superseded, 50, ""},
		}},
		{"duplicates never apply twice", FromSnapshot(50, t0.UnixMicro(), 10), []step{
			{ev("e1", event.Sold, -5, 10), Applied, 45, ""},
			{ev("e1", event.Sold, -5, 10), Duplicate, 45, ""},
			{ev("e1", event.Sold, -5, 11), Duplicate, 45, ""},
		}},
		{"OK LOW OUT LOW OK", FromSnapshot(12, t0.UnixMicro(), 10), []step{
			{ev("e1", event.Sold, -1, 1), Applied, 11, ""},
			{ev("e2", event.Sold, -2, 2), Applied, 9, "OK>LOW"},
			{ev("e3", event.Sold, -1, 3), Applied, 8, ""}, // staying LOW emits nothing
			{ev("e4", event.Sold, -8, 4), Applied, 0, "LOW>OUT"},
			{ev("e5", event.Received, 5, 5), Applied, 5, "OUT>LOW"},
			{ev("e6", event.Counted, 30, 6), Applied, 30, "LOW>OK"},
		}},
		{"straight to OUT and back", FromSnapshot(12, t0.UnixMicro(), 10), []step{
			{ev("e1", event.Sold, -13, 1), Applied, -1, "OK>OUT"},
			{ev("e2", event.TransferIn, 20, 2), Applied, 19, "OUT>OK"},
		}},
		{"far older than the horizon is refused", FromSnapshot(0, t0.UnixMicro(), 10), []step{
			{ev("new", event.Received, 20, 60*24*10), Applied, 20, "OUT>OK"},
			{ev("old", event.Sold, -5, 60*24*1), TooLate, 20, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.snapshot
			if s == nil {
				s = &State{}
			}
			for i, st := range tt.steps {
				r := s.Apply(st.a, 10, 0)
				alert := ""
				if r.Alert {
					alert = r.From.String() + ">" + r.To.String()
				}
				if r.Outcome != st.outcome || r.OnHand != st.onHand || alert != st.alert {
					t.Fatalf("step %d (%s): got %v on_hand=%d alert=%q, want %v %d %q",
						i, st.a.EventID, r.Outcome, r.OnHand, alert, st.outcome, st.onHand, st.alert)
				}
			}
		})
	}
}

// TestArrivalOrderDoesNotMatter applies the same events in many orders and
// checks that on_hand ends the same.
func TestArrivalOrderDoesNotMatter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var events []*event.Adjustment
	for i := range 60 {
		r, q := event.Sold, -int64(rng.IntN(5)+1)
		switch rng.IntN(5) {
		case 0:
			r, q = event.Received, int64(rng.IntN(30)+1)
		case 1:
			r, q = event.Counted, int64(rng.IntN(100))
		}
		events = append(events, ev(fmt.Sprintf("e%02d", i), r, q, rng.IntN(500)))
	}
	want := int64(0)
	for i := range 50 {
		s := FromSnapshot(40, t0.UnixMicro(), 10)
		order := rng.Perm(len(events))
		for _, j := range order {
			s.Apply(events[j], 10, 0)
			if rng.IntN(4) == 0 { // and some redeliveries
				if r := s.Apply(events[j], 10, 0); r.Outcome != Duplicate {
					t.Fatalf("redelivery of %s: %v", events[j].EventID, r.Outcome)
				}
			}
		}
		if i == 0 {
			want = s.OnHand
		} else if s.OnHand != want {
			t.Fatalf("order %d: on_hand %d, first order gave %d", i, s.OnHand, want)
		}
	}
	// And against the rule computed directly.
	var count *event.Adjustment
	for _, e := range events {
		if e.Reason == event.Counted && (count == nil || e.EventTime > count.EventTime ||
			e.EventTime == count.EventTime && e.EventID > count.EventID) {
			count = e
		}
	}
	direct, from := int64(40), t0.UnixMicro()
	if count != nil && count.EventTime > from {
		direct, from = count.Quantity, count.EventTime
	}
	for _, e := range events {
		if e.Reason != event.Counted && e.EventTime > from {
			direct += e.Quantity
		}
	}
	if want != direct {
		t.Fatalf("on_hand %d, the rule gives %d", want, direct)
	}
}

func TestHorizonBoundsMemory(t *testing.T) {
	s := &State{}
	for i := range 20_000 {
		s.Apply(ev(fmt.Sprintf("e%d", i), event.Received, 1, i*10), 10, 0) // every 10 minutes, 139 days
	}
	if s.OnHand != 20_000 {
		t.Fatalf("on_hand %d, want 20000", s.OnHand)
	}
	perHorizon := int(DefaultHorizon/(10*time.Minute)) * 9 / 8
	if s.Seen.Len() > perHorizon+1 || len(s.Deltas) > perHorizon+1 {
		t.Fatalf("kept %d ids and %d deltas, want at most %d", s.Seen.Len(), len(s.Deltas), perHorizon)
	}
	// Within the horizon a redelivery is still recognised.
	if r := s.Apply(ev("e19990", event.Received, 1, 199900), 10, 0); r.Outcome != Duplicate {
		t.Fatalf("recent redelivery: %v", r.Outcome)
	}
	if r := s.Apply(ev("e5", event.Received, 1, 50), 10, 0); r.Outcome != TooLate {
		t.Fatalf("ancient redelivery: %v", r.Outcome)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	s := FromSnapshot(12, t0.UnixMicro(), 10)
	for i := range 30 {
		s.Apply(ev(fmt.Sprintf("e%d", i), event.Sold, -1, i), 10, 0)
	}
	s.Apply(ev("c", event.Counted, 100, 10), 10, 0)
	b, _ := s.MarshalBinary()
	var got State
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	s.Oldest, got.Oldest = 0, 0
	if !reflect.DeepEqual(&got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, *s)
	}
	for i := range b {
		var x State
		if err := x.UnmarshalBinary(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded without error", i)
		}
	}
}

func TestAlertIDDeterministic(t *testing.T) {
	k := event.Key{SKU: "A", LocationID: "B"}
	a, b := AlertID(k, "e1", Low), AlertID(k, "e1", Low)
	if a != b || len(a) != 32 {
		t.Fatalf("ids %q %q", a, b)
	}
	if AlertID(k, "e1", Out) == a || AlertID(event.Key{SKU: "A", LocationID: "C"}, "e1", Low) == a {
		t.Fatal("different alerts share an id")
	}
}

func TestThresholds(t *testing.T) {
	th, err := ParseThresholds(strings.NewReader("sku,location_id,threshold\nA,S1,5\nA,*,7\nB,*,0\n"), "t.csv", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sku, loc string
		want     int64
	}{{"A", "S1", 5}, {"A", "S2", 7}, {"B", "S1", 0}, {"C", "S1", 10}} {
		if got := th.Lookup(event.Key{SKU: c.sku, LocationID: c.loc}); got != c.want {
			t.Errorf("%s@%s: %d, want %d", c.sku, c.loc, got, c.want)
		}
	}
	for _, bad := range []string{"sku,loc,threshold\n", "sku,location_id,threshold\nA,S1,x\n", "sku,location_id,threshold\nA,S1\n", "sku,location_id,threshold\n,S1,3\n"} {
		if _, err := ParseThresholds(strings.NewReader(bad), "t.csv", 10); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	s := FromSnapshot(1_000_000, t0.UnixMicro(), 10)
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("evt-%08d", i)
	}
	a := ev("", event.Sold, -1, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.EventID = ids[i%len(ids)]
		a.EventTime = t0.UnixMicro() + int64(i)*1000
		if i%len(ids) == 0 {
			s.Seen = IDs{}
		}
		s.Apply(a, 10, 0)
	}
}

func TestParseSeverity(t *testing.T) {
	for _, s := range []Severity{OK, Low, Out} {
		if got := ParseSeverity(s.String()); got != s {
			t.Errorf("ParseSeverity(%q) = %v", s.String(), got)
		}
		if got := ParseSeverity(s.AlertName()); got != s {
			t.Errorf("ParseSeverity(%q) = %v", s.AlertName(), got)
		}
	}
	if got := ParseSeverity("MAYBE"); got != Unknown {
		t.Errorf("ParseSeverity(MAYBE) = %v, want UNKNOWN", got)
	}
}
