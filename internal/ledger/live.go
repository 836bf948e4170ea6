package ledger

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/codec"
	"github.com/inventory-events/inventory/internal/event"
)

// Live reorder thresholds: a change sets one rule of the thresholds file,
// (sku, location_id) or (sku, *), while the streaming job runs. The rules
// then resolve as in the file ((sku, location_id), then (sku, *), then the
// default), the live value of a rule replacing the file's. Changes are
// ordered by (At, ID): of two changes of one rule the later wins, whatever
// order they arrive in, and a change applied twice changes nothing.

// MaxThreshold is the largest threshold a change may set: on-hand of a
// count is bounded by event.MaxQuantity, so a larger one would never be
// reached.
const MaxThreshold = event.MaxQuantity

// Change is one live change of a reorder threshold.
type Change struct {
	ID         string // unique id of the change
	SKU        string
	LocationID string // a location or Wildcard
	Threshold  int64
	At         int64  // when it was made, Unix µs
	By         string // who made it
}

// rule returns the rule the change sets.
func (c *Change) rule() Rule {
	return Rule{SKU: c.SKU, LocationID: c.LocationID, Threshold: c.Threshold}
}

// Wild reports whether the change sets a (sku, *) rule.
func (c *Change) Wild() bool { return c.LocationID == Wildcard }

// Key returns the (sku, location) key of a change that is not Wild.
func (c *Change) Key() event.Key { return event.Key{SKU: c.SKU, LocationID: c.LocationID} }

// ParseThreshold reads a threshold as typed by a person: a whole number
// from 0 to MaxThreshold.
func ParseThreshold(s string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 || v > MaxThreshold {
		return 0, fmt.Errorf("threshold %q is not a whole number from 0 to %d", s, MaxThreshold)
	}
	return v, nil
}

// Validate checks a change against the event contract's rules for SKUs and
// locations (LocationID may also be Wildcard), the threshold bounds and
// that it has an id and a time.
func (c *Change) Validate() error {
	probe := event.Adjustment{EventID: "threshold-change", SKU: c.SKU, LocationID: c.LocationID,
		Reason: event.Counted, EventTime: event.MinEventTime.UnixMicro()}
	if c.LocationID == Wildcard {
		probe.LocationID = "any"
	}
	if err := event.Validate(&probe, clock.Now()); err != nil {
		return fmt.Errorf("threshold change of %s %s: %w", c.SKU, c.LocationID, err)
	}
	if c.Threshold < 0 || c.Threshold > MaxThreshold {
		return fmt.Errorf("threshold change of %s %s: threshold %d is not from 0 to %d", c.SKU, c.LocationID, c.Threshold, MaxThreshold)
	}
	if c.ID == "" || c.At <= 0 {
		return fmt.Errorf("threshold change of %s %s: no change id or time", c.SKU, c.LocationID)
	}
	return nil
}

// Setting is the live value of one rule and the change that set it.
type Setting struct {
	Threshold int64
	At        int64
	ID        string
}

// after reports whether s was set after o.
func (s Setting) after(o Setting) bool {
	if s.At != o.At {
		return s.At > o.At
	}
	return s.ID > o.ID
}

// Live holds the live rules of some keys: the changes received, the latest
// per rule. The zero value is empty and ready to use.
type Live struct {
	ByKey map[event.Key]Setting
	BySKU map[string]Setting
}

// Len returns the number of live rules.
func (l *Live) Len() int {
	if l == nil {
		return 0
	}
	return len(l.ByKey) + len(l.BySKU)
}

func (l *Live) get(c *Change) (Setting, bool) {
	if l == nil {
		return Setting{}, false
	}
	if c.Wild() {
		s, ok := l.BySKU[c.SKU]
		return s, ok
	}
	s, ok := l.ByKey[c.Key()]
	return s, ok
}

// Set records c unless a later change of its rule is in l or in any of
// older (live rules known elsewhere, e.g. restored at start). It returns
// whether c was applied and the rule's value before it (ok false: the rule
// did not exist), looked up in l, older, then base.
func (l *Live) Set(c *Change, base *Thresholds, older ...*Live) (applied bool, prev int64, ok bool) {
	s := Setting{Threshold: c.Threshold, At: c.At, ID: c.ID}
	cur, have := l.get(c)
	for _, o := range older {
		if os, oh := o.get(c); oh && (!have || os.after(cur)) {
			cur, have = os, true
		}
	}
	if have {
		prev, ok = cur.Threshold, true
		if !s.after(cur) {
			return false, prev, ok
		}
	} else if base != nil {
		if c.Wild() {
			prev, ok = base.BySKU[c.SKU]
		} else {
			prev, ok = base.ByKey[c.Key()]
		}
	}
	if c.Wild() {
		if l.BySKU == nil {
			l.BySKU = map[string]Setting{}
		}
		l.BySKU[c.SKU] = s
	} else {
		if l.ByKey == nil {
			l.ByKey = map[event.Key]Setting{}
		}
		l.ByKey[c.Key()] = s
	}
	return true, prev, ok
}

// Effective returns the threshold of k: the rules of base with the live
// rules of lives over them (of one rule in several, the latest), resolved
// (sku, location), (sku, *), default.
func Effective(k event.Key, base *Thresholds, lives ...*Live) int64 {
	var key, sku Setting
	var haveKey, haveSKU bool
	for _, l := range lives {
		if l == nil {
			continue
		}
		if s, ok := l.ByKey[k]; ok && (!haveKey || s.after(key)) {
			key, haveKey = s, true
		}
		if s, ok := l.BySKU[k.SKU]; ok && (!haveSKU || s.after(sku)) {
			sku, haveSKU = s, true
		}
	}
	if haveKey {
		return key.Threshold
	}
	if base != nil {
		if v, ok := base.ByKey[k]; ok {
			return v
		}
	}
	if haveSKU {
		return sku.Threshold
	}
	if base == nil {
		return DefaultThreshold
	}
	if v, ok := base.BySKU[k.SKU]; ok {
		return v
	}
	return base.Default
}

// Changes returns l's rules as changes (By empty), for encoding.
func (l *Live) Changes() []Change {
	if l == nil {
		return nil
	}
	out := make([]Change, 0, l.Len())
	for k, s := range l.ByKey {
		out = append(out, Change{ID: s.ID, SKU: k.SKU, LocationID: k.LocationID, Threshold: s.Threshold, At: s.At})
	}
	for sku, s := range l.BySKU {
		out = append(out, Change{ID: s.ID, SKU: sku, LocationID: Wildcard, Threshold: s.Threshold, At: s.At})
	}
	return out
}

// AppendBinary appends a compact encoding of l to b, for Beam state.
func (l *Live) AppendBinary(b []byte) []byte {
	cs := l.Changes()
	b = codec.AppendUvarint(b, uint64(len(cs)))
	for i := range cs {
		b = AppendChange(b, &cs[i])
	}
	return b
}

// UnmarshalBinary decodes the output of AppendBinary into l.
func (l *Live) UnmarshalBinary(b []byte) error {
	r := codec.NewReader(b)
	*l = Live{}
	for n := r.Len(); n > 0 && r.Err() == nil; n-- {
		c := ReadChange(r)
		l.Set(&c, nil)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("ledger: decode live thresholds: %w", err)
	}
	return nil
}

// AppendChange appends the encoding of c to b.
func AppendChange(b []byte, c *Change) []byte {
	b = codec.AppendString(b, c.ID)
	b = codec.AppendString(b, c.SKU)
	b = codec.AppendString(b, c.LocationID)
	b = codec.AppendVarint(b, c.Threshold)
	b = codec.AppendVarint(b, c.At)
	return codec.AppendString(b, c.By)
}

// ReadChange reads what AppendChange wrote (check r.Err()).
func ReadChange(r *codec.Reader) Change {
	return Change{ID: r.String(), SKU: r.String(), LocationID: r.String(), Threshold: r.Varint(), At: r.Varint(), By: r.String()}
}

// Reevaluate classifies the key's stock against a new threshold, as Apply
// does after an event: a change of severity is an alert (Result.Alert),
// except for a key that has no stock state yet (Unknown), which stays so.
// On-hand does not change.
func (s *State) Reevaluate(threshold int64) Result {
	r := Result{Outcome: Applied, Previous: s.OnHand, OnHand: s.OnHand}
	if s.Severity == Unknown {
		return r
	}
	to := Classify(s.OnHand, threshold)
	if to != s.Severity {
		r.Alert, r.From, r.To = true, s.Severity, to
	}
	s.Severity = to
	return r
}

// ChangeEventID is the event id under which the effects of a threshold
// change are stored (stock_levels, low_stock_alerts): alert ids derive from
// it (AlertID), so a change re-applied raises the same alert id.
func ChangeEventID(changeID string) string { return "threshold:" + changeID }
