// Package ledger holds the stock semantics of one (sku, location) key: how
// counts and deltas make on-hand, which event ids are duplicates, and when a
// key changes stock state and so raises an alert. The streaming job keeps a
// State per key in Beam state, the consumer keeps them in a map, the nightly
// job replays a day through them: one set of rules everywhere.
//
// The rules:
//   - on_hand = the latest count (a COUNTED event, or the snapshot) plus every
//     delta whose event_time is strictly after that count. A delta at or before
//     the latest count is recorded but not applied; a count at or before the
//     latest count changes nothing (ties go to the larger event_id). So
//     arrival order does not change on_hand.
//   - An event_id seen before for the key is a duplicate and changes nothing.
//   - Severity is OUT if on_hand <= 0, else LOW if on_hand < threshold, else OK.
//     Each change of severity is an alert; a key with no snapshot alerts on its
//     first event only if it starts LOW or OUT.
//
// Memory is bounded by Horizon: event ids and individual deltas are kept
// while their event_time is within Horizon of the newest event_time of the
// key. Older deltas are folded into one sum. An event that is older than the
// horizon and newer than the latest count cannot be checked for duplication,
// so it is refused (TooLate) rather than risk applying it twice.
package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/inventory-events/inventory/internal/event"
)

// DefaultHorizon is how long, in event time, ids and deltas are remembered:
// longer than Pub/Sub's default retention (7 days), so a redelivery is always
// recognised.
const DefaultHorizon = 8 * 24 * time.Hour

// Severity is a key's stock state.
type Severity uint8

// Severities. Unknown is a key that has seen no snapshot and no event.
const (
	Unknown Severity = iota
	OK
	Low
	Out
)

func (s Severity) String() string {
	switch s {
	case OK:
		return "OK"
	case Low:
		return "LOW"
	case Out:
		return "OUT"
	}
	return "UNKNOWN"
}

// AlertName is the alert severity for entering s: LOW, OUT or RECOVERED.
func (s Severity) AlertName() string {
	if s == OK {
		return "RECOVERED"
	}
	return s.String()
}

// ParseSeverity is the inverse of String and AlertName: "OK" or
// "RECOVERED" is OK, "LOW" Low, "OUT" Out, anything else Unknown.
func ParseSeverity(name string) Severity {
	switch name {
	case "LOW":
		return Low
	case "OUT":
		return Out
	case "OK", "RECOVERED":
		return OK
	}
	return Unknown
}

// Classify returns the severity of onHand against threshold.
func Classify(onHand, threshold int64) Severity {
	switch {
	case onHand <= 0:
		return Out
	case onHand < threshold:
		return Low
	}
	return OK
}

// Outcome is what Apply did with an event.
type Outcome uint8

// Outcomes. Applied and Superseded are both accepted ("applied" in the
// reconciliation received = applied + duplicates + dead-lettered);
// TooLate must be dead-lettered by the caller.
const (
	Applied    Outcome = iota + 1 // changed the ledger (on_hand may still be the same)
	Superseded                    // at or before the latest count: recorded, not applied
	Duplicate                     // event_id seen before
	TooLate                       // older than the horizon: cannot be deduplicated
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "APPLIED"
	case Superseded:
		return "SUPERSEDED"
	case Duplicate:
		return "DUPLICATE"
	case TooLate:
		return "TOO_LATE"
	}
	return "?"
}

// Delta is one applied change after the latest count.
type Delta struct {
	Time int64 // event time, Unix µs
	Qty  int64
}

// State is the ledger of one key. The zero value is a key with no snapshot.
type State struct {
	HasCount     bool
	CountTime    int64 // Unix µs
	CountQty     int64
	CountEventID string
	// Deltas applied after the count, within the horizon.
	Deltas []Delta
	// Folded is the sum of applied deltas that fell out of the horizon;
	// FoldedThrough is the newest event time among them.
	Folded        int64
	FoldedThrough int64
	// MaxTime is the newest event time seen.
	MaxTime int64
	// Seen holds the event ids within the horizon with their event time.
	Seen   IDs
	OnHand int64
	// Oldest caches the oldest event time among Deltas and Seen (0: unknown).
	Oldest int64
	// SweptBefore is the cut of the last sweep of ids and deltas (0: none
	// since the State was made or decoded whole; a change record sets it):
	// see AppendChanges. The horizon must not change while a stored State
	// is in use, or a record's cut would drop what the new horizon keeps.
	SweptBefore int64
	// tracking is set by TrackChanges; changes then holds the ids and
	// deltas added since the last AppendChanges, nil while there are none
	// (changes.go).
	changes *changeLog
	// Severity sits with the other small fields at the end, so that a
	// State packs without padding (figures: docs/benchmarks.md#figures-behind-the-code).
	Severity Severity
	tracking bool
}

// FromSnapshot returns the state of a key whose stock was onHand at asOf
// (Unix µs). Its severity is set without an alert.
func FromSnapshot(onHand, asOf, threshold int64) *State {
	return &State{HasCount: true, CountTime: asOf, CountQty: onHand, OnHand: onHand,
		MaxTime: asOf, Severity: Classify(onHand, threshold)}
}

// Result is the effect of one Apply.
type Result struct {
	Outcome  Outcome
	Previous int64 // on_hand before
	OnHand   int64 // on_hand after
	// Alert is set when the severity changed: From -> To.
	Alert    bool
	From, To Severity
}

// Changed reports whether on_hand changed.
func (r Result) Changed() bool { return r.Previous != r.OnHand }

// Apply applies a (validated) adjustment with the key's threshold, and
// horizon (0 means DefaultHorizon).
func (s *State) Apply(a *event.Adjustment, threshold int64, horizon time.Duration) Result {
	if horizon <= 0 {
		horizon = DefaultHorizon
	}
	h := horizon.Microseconds()
	r := Result{Previous: s.OnHand, OnHand: s.OnHand}
	if s.Seen.has(a.EventID) {
		r.Outcome = Duplicate
		return r
	}
	superseded := s.HasCount && !after(a.EventTime, a.EventID, a.Reason == event.Counted, s.CountTime, s.CountEventID)
	if a.EventTime < s.MaxTime-h {
		if superseded {
			// Older than the count: it cannot change on_hand, whether or
			// not it was seen before.
			r.Outcome = Superseded
			return r
		}
		r.Outcome = TooLate
		return r
	}
	s.Seen.add(a.EventID, a.EventTime)
	if s.tracking {
		c := s.track()
		c.ids = append(c.ids, idTime{a.EventID, a.EventTime})
	}
	if s.Oldest != 0 && a.EventTime < s.Oldest {
		s.Oldest = a.EventTime
	}
	if a.EventTime > s.MaxTime {
		s.MaxTime = a.EventTime
		s.expire(h)
	}
	if superseded {
		r.Outcome = Superseded
		return r
	}
	r.Outcome = Applied
	if a.Reason == event.Counted {
		s.HasCount, s.CountTime, s.CountQty, s.CountEventID = true, a.EventTime, a.Quantity, a.EventID
		kept := s.Deltas[:0]
		for _, d := range s.Deltas {
			if d.Time > a.EventTime {
				kept = append(kept, d)
			}
		}
		s.Deltas = kept
		if s.FoldedThrough <= a.EventTime {
			s.Folded, s.FoldedThrough = 0, 0
		}
		s.OnHand = s.CountQty + s.Folded
		for _, d := range s.Deltas {
			s.OnHand += d.Qty
		}
	} else {
		s.Deltas = append(s.Deltas, Delta{Time: a.EventTime, Qty: a.Quantity})
		if s.tracking {
			c := s.track()
			c.deltas = append(c.deltas, Delta{Time: a.EventTime, Qty: a.Quantity})
		}
		s.OnHand += a.Quantity
	}
	s.settle(&r, threshold)
	return r
}

// CountsAfter reports whether a count at (t, id) replaces the count at
// (ct, cid): it is newer, or as new with a larger event id.
func CountsAfter(t int64, id string, ct int64, cid string) bool {
	return after(t, id, true, ct, cid)
}

// ApplyChecked is Apply for an event whose id the caller has checked
// against every event the key ever stored (the warehouse), and found new.
// Where Apply refuses an event as TooLate (older than the horizon, so the
// ledger cannot tell a duplicate), ApplyChecked judges it as a replay of the
// whole history would: superseded if the latest count covers it, else
// applied, its delta folded into on-hand. Its id is then remembered for a
// horizon from the key's newest event, so that a redelivery of it is a
// duplicate. A late COUNTED event is the one exception: a count needs the
// deltas after it one by one, which the ledger no longer keeps that far
// back, so it stays TooLate.
func (s *State) ApplyChecked(a *event.Adjustment, threshold int64, horizon time.Duration) Result {
	r := s.Apply(a, threshold, horizon)
	if r.Outcome != TooLate || a.Reason == event.Counted {
		return r
	}
	s.Seen.add(a.EventID, s.MaxTime)
	if s.tracking {
		c := s.track()
		c.ids = append(c.ids, idTime{a.EventID, s.MaxTime})
	}
	if s.HasCount && !after(a.EventTime, a.EventID, false, s.CountTime, s.CountEventID) {
		r.Outcome = Superseded
		return r
	}
	r.Outcome = Applied
	s.Folded += a.Quantity
	s.FoldedThrough = max(s.FoldedThrough, a.EventTime)
	s.OnHand += a.Quantity
	s.settle(&r, threshold)
	return r
}

// settle records the on-hand an applied event left in r, and the key's new
// severity, with an alert in r if it changed (a key with no snapshot does
// not alert on starting OK).
func (s *State) settle(r *Result, threshold int64) {
	r.OnHand = s.OnHand
	to := Classify(s.OnHand, threshold)
	if to != s.Severity && (s.Severity != Unknown || to != OK) {
		r.Alert, r.From, r.To = true, s.Severity, to
	}
	s.Severity = to
}

// after reports whether an event at (t, id) comes after the count at
// (ct, cid). A delta at the count's time is included in the count; a count
// at the same time as another is ordered by event id.
func after(t int64, id string, isCount bool, ct int64, cid string) bool {
	if t != ct {
		return t > ct
	}
	return isCount && id > cid
}

// expire forgets ids and folds deltas older than the horizon. It runs when
// MaxTime advances and sweeps only once the oldest entry is an eighth of the
// horizon past it, so each entry is swept O(1) times on average.
func (s *State) expire(h int64) {
	cut := s.MaxTime - h
	grace := cut - h/8
	if s.oldest() >= grace {
		return
	}
	kept := s.Deltas[:0]
	for _, d := range s.Deltas {
		if d.Time < cut {
			s.Folded += d.Qty
			s.FoldedThrough = max(s.FoldedThrough, d.Time)
			continue
		}
		kept = append(kept, d)
	}
	s.Deltas = kept
	s.Seen.deleteBefore(cut)
	s.Oldest = 0
	s.SweptBefore = cut
}

// oldest returns the oldest event time among kept deltas and ids, caching it
// in Oldest (0 means not known).
func (s *State) oldest() int64 {
	if s.Oldest != 0 {
		return s.Oldest
	}
	o := s.MaxTime
	for _, d := range s.Deltas {
		o = min(o, d.Time)
	}
	for _, t := range s.Seen.All() {
		o = min(o, t)
	}
	s.Oldest = o
	return o
}

// AlertID is the deterministic id of the alert raised for key by eventID
// when it entered severity to.
func AlertID(k event.Key, eventID string, to Severity) string {
	h := sha256.New()
	for _, s := range []string{k.SKU, k.LocationID, eventID, to.AlertName()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
