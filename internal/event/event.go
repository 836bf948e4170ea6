// Package event is the inventory adjustment contract in Go: the flat
// Adjustment value every part of the product passes around, its decoders
// (Pub/Sub JSON and BINARY payloads, CSV rows) and its validation rules.
//
// Decoding and validation never panic on input: anything that cannot be
// accepted comes back as an *Invalid error carrying a short reason code,
// which callers put on the dead-letter record.
package event

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// Reason is why stock changed. Its values are the proto enum's.
type Reason int32

// The reasons of the contract.
const (
	reasonUnspecified = Reason(inventoryv1.InventoryAdjustment_REASON_UNSPECIFIED)
	Received          = Reason(inventoryv1.InventoryAdjustment_RECEIVED)
	Sold              = Reason(inventoryv1.InventoryAdjustment_SOLD)
	Returned          = Reason(inventoryv1.InventoryAdjustment_RETURNED)
	Damaged           = Reason(inventoryv1.InventoryAdjustment_DAMAGED)
	Adjusted          = Reason(inventoryv1.InventoryAdjustment_ADJUSTED)
	Counted           = Reason(inventoryv1.InventoryAdjustment_COUNTED)
	TransferIn        = Reason(inventoryv1.InventoryAdjustment_TRANSFER_IN)
	TransferOut       = Reason(inventoryv1.InventoryAdjustment_TRANSFER_OUT)
)

// reasons lists every valid reason in enum order.
var reasons = []Reason{Received, Sold, Returned, Damaged, Adjusted, Counted, TransferIn, TransferOut}

// reasonNames are the contract's names of reasons, by value.
var reasonNames = func() []string {
	n := make([]string, len(inventoryv1.InventoryAdjustment_Reason_name))
	for v, name := range inventoryv1.InventoryAdjustment_Reason_name {
		n[v] = name
	}
	return n
}()

// String returns the contract's name of r ("SOLD").
func (r Reason) String() string {
	if n, ok := inventoryv1.InventoryAdjustment_Reason_name[int32(r)]; ok {
		return n
	}
	return fmt.Sprintf("Reason(%d)", int32(r))
}

// ParseReason maps a contract name ("SOLD", case-insensitive, surrounding
// blanks ignored) to its Reason.
func ParseReason(s string) (Reason, bool) {
	s = strings.TrimSpace(s)
	for _, r := range reasons { // the exact name, without hashing it
		if s == reasonNames[r] {
			return r, true
		}
	}
	if v, ok := inventoryv1.InventoryAdjustment_Reason_value[s]; ok && v != 0 {
		return Reason(v), true
	}
	if v, ok := inventoryv1.InventoryAdjustment_Reason_value[strings.ToUpper(s)]; ok && v != 0 {
		return Reason(v), true
	}
	return reasonUnspecified, false
}

// Adjustment is one inventory adjustment, validated or not.
type Adjustment struct {
	EventID    string
	SKU        string
	LocationID string
	Reason     Reason
	// Quantity is a signed delta, or for Counted the absolute on-hand found.
	Quantity int64
	// EventTime is when it happened, in Unix microseconds (UTC).
	EventTime int64
	Source    string
}

// Time returns EventTime as a time.Time in UTC.
func (a *Adjustment) Time() time.Time { return time.UnixMicro(a.EventTime).UTC() }

// Key returns the stock key of a.
func (a *Adjustment) Key() Key { return Key{SKU: a.SKU, LocationID: a.LocationID} }

// proto converts a to the wire message.
func (a *Adjustment) proto() *inventoryv1.InventoryAdjustment {
	return &inventoryv1.InventoryAdjustment{
		EventId:    a.EventID,
		Sku:        a.SKU,
		LocationId: a.LocationID,
		Reason:     inventoryv1.InventoryAdjustment_Reason(a.Reason),
		Quantity:   a.Quantity,
		EventTime:  FormatTime(a.EventTime),
		Source:     a.Source,
	}
}

// Key identifies the stock of one SKU at one location.
type Key struct {
	SKU        string
	LocationID string
}

func (k Key) String() string { return k.SKU + "@" + k.LocationID }

// Shard returns the key's shard in [0, n): FNV-1a of the SKU, a zero byte
// and the location. Every part that batches keys by shard uses it.
func (k Key) Shard(n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(k.SKU); i++ {
		h = (h ^ uint32(k.SKU[i])) * 16777619
	}
	h *= 16777619 // the zero byte: h ^ 0 == h
	for i := 0; i < len(k.LocationID); i++ {
		h = (h ^ uint32(k.LocationID[i])) * 16777619
	}
	return int(h % uint32(n))
}

// FormatTime renders Unix microseconds as RFC 3339 in UTC.
func FormatTime(micros int64) string {
	return time.UnixMicro(micros).UTC().Format(time.RFC3339Nano)
}

// parseTime parses an RFC 3339 time into Unix microseconds.
func parseTime(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMicro(), nil
}

// Limits of the contract, beyond which an adjustment is dead-lettered.
const (
	MaxQuantity   = 1_000_000_000 // |quantity|, and on-hand of a count
	maxIDLen      = 128           // event_id
	maxKeyLen     = 64            // sku, location_id
	maxSourceLen  = 128
	maxPayloadLen = 64 << 10 // bytes of one message
	// maxFuture is how far past the validation clock an event_time may be.
	maxFuture = 24 * time.Hour
)

// MinEventTime is the earliest event_time accepted.
var MinEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Reason codes of Invalid. They are stable: dashboards group by them.
const (
	CodeUndecodable     = "undecodable"     // not JSON / protobuf / a CSV row at all
	CodeSchemaMismatch  = "schema_mismatch" // decodes, but not as InventoryAdjustment
	CodeTooLarge        = "payload_too_large"
	CodeBadEncoding     = "unknown_encoding" // googclient_schemaencoding not JSON/BINARY
	CodeUnknownReason   = "unknown_reason"
	codeMissingEventID  = "missing_event_id"
	codeBadEventID      = "bad_event_id"
	codeMissingSKU      = "missing_sku"
	codeBadSKU          = "bad_sku"
	codeMissingLocation = "missing_location_id"
	codeBadLocation     = "bad_location_id"
	codeMissingTime     = "missing_event_time"
	CodeBadTime         = "bad_event_time"
	codeTimeOutOfRange  = "event_time_out_of_range"
	CodeBadQuantity     = "bad_quantity"
	codeQuantityRange   = "quantity_out_of_range"
	codeNegativeCount   = "negative_count"
	CodeWrongSign       = "wrong_sign"
	codeBadSource       = "bad_source" // not UTF-8, too long, or a control character
	codeBadCSV          = "bad_csv_row"
	// CodeTooLate: older than its key's dedup horizon and not covered by a
	// count (ledger.TooLate), so it cannot be deduplicated safely.
	CodeTooLate = "too_late"
	// CodeInternal: refused by an error that is not an Invalid.
	CodeInternal = "internal"
)

// Invalid is the error for input that cannot be accepted.
type Invalid struct {
	Code   string // one of the Code constants
	Detail string
}

func (e *Invalid) Error() string { return e.Code + ": " + e.Detail }

func invalid(code, format string, args ...any) *Invalid {
	return &Invalid{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Validate checks a against the contract at the clock now (for the
// far-future bound). It returns nil or an *Invalid.
func Validate(a *Adjustment, now time.Time) error {
	if a.EventID == "" {
		return invalid(codeMissingEventID, "event_id is empty")
	}
	if err := checkID(a.EventID, maxIDLen, codeBadEventID, "event_id"); err != nil {
		return err
	}
	if a.SKU == "" {
		return invalid(codeMissingSKU, "sku is empty")
	}
	if err := checkID(a.SKU, maxKeyLen, codeBadSKU, "sku"); err != nil {
		return err
	}
	if a.LocationID == "" {
		return invalid(codeMissingLocation, "location_id is empty")
	}
	if err := checkID(a.LocationID, maxKeyLen, codeBadLocation, "location_id"); err != nil {
		return err
	}
	if err := checkText(a.Source, maxSourceLen, codeBadSource, "source"); err != nil {
		return err
	}
	if a.Reason <= reasonUnspecified || a.Reason > TransferOut {
		return invalid(CodeUnknownReason, "reason %v is not one of the contract's", a.Reason)
	}
	if a.EventTime == 0 {
		return invalid(codeMissingTime, "event_time is missing")
	}
	if a.EventTime < MinEventTime.UnixMicro() || a.EventTime > now.Add(maxFuture).UnixMicro() {
		return invalid(codeTimeOutOfRange, "event_time %s is before %s or more than %s after %s",
			FormatTime(a.EventTime), MinEventTime.Format(time.RFC3339), maxFuture, now.UTC().Format(time.RFC3339))
	}
	q := a.Quantity
	if q > MaxQuantity || q < -MaxQuantity {
		return invalid(codeQuantityRange, "quantity %d is beyond ±%d", q, MaxQuantity)
	}
	switch a.Reason {
	case Counted:
		if q < 0 {
			return invalid(codeNegativeCount, "a COUNTED quantity is the on-hand found and cannot be negative (%d)", q)
		}
	case Received, Returned, TransferIn:
		if q <= 0 {
			return invalid(CodeWrongSign, "%v must have a positive quantity, got %d", a.Reason, q)
		}
	case Sold, Damaged, TransferOut:
		if q >= 0 {
			return invalid(CodeWrongSign, "%v must have a negative quantity, got %d", a.Reason, q)
		}
	}
	return nil
}

// checkID accepts printable ASCII identifiers without blanks, which is what
// every source system we know sends; whitespace or control characters in a
// key are almost always a bug upstream that would split one SKU's stock in two.
func checkID(s string, max int, code, field string) error {
	if len(s) > max {
		return invalid(code, "%s is %d bytes, more than %d", field, len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return invalid(code, "%s %q has a blank, control or non-ASCII byte at %d", field, s, i)
		}
	}
	return nil
}

// checkText accepts UTF-8 text of at most max bytes without control
// characters (C0, DEL, C1: ESC and BEL among them), which a terminal or a
// log viewer would act on rather than show. Every string field of the
// contract is either an identifier (checkID, stricter) or such text.
func checkText(s string, max int, code, field string) error {
	if len(s) > max {
		return invalid(code, "%s is %d bytes, more than %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return invalid(code, "%s is not UTF-8", field)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return invalid(code, "%s %q has a control character at byte %d", field, s, i)
	}
	return nil
}
