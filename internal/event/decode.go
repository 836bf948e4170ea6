package event

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// Pub/Sub attribute names and values the decoders look at.
const (
	AttrEncoding   = "googclient_schemaencoding"
	attrSchemaName = "googclient_schemaname"
	attrRevision   = "googclient_schemarevisionid"
	EncodingJSON   = "JSON"
	EncodingBinary = "BINARY"
	// AttrEventTime and AttrEventID are set by the publisher so that
	// Dataflow's native read can take timestamps and ids from attributes.
	AttrEventTime = "event_time"
	AttrEventID   = "event_id"
	// AttrLateChecked marks a too_late event published again by `inventory
	// replay-late`, after it checked the event's id against every
	// adjustment the warehouse holds: the stream then judges it with
	// ledger.State.ApplyChecked instead of refusing it again. Its value is
	// the message id of the dead letter.
	AttrLateChecked = "inventory_late_checked"
)

// Decode decodes a Pub/Sub payload in the given schema encoding ("JSON",
// "BINARY"; empty means JSON, the topic's default) into a. It does not
// validate; call Validate next. Errors are *Invalid.
func Decode(data []byte, encoding string, a *Adjustment) error {
	if len(data) > maxPayloadLen {
		return invalid(CodeTooLarge, "payload is %d bytes, more than %d", len(data), maxPayloadLen)
	}
	switch encoding {
	case "", EncodingJSON:
		return decodeJSON(data, a)
	case EncodingBinary:
		return decodeBinary(data, a)
	default:
		return invalid(CodeBadEncoding, "schema encoding %q is neither JSON nor BINARY", encoding)
	}
}

// decodeBinary decodes the protobuf wire form of InventoryAdjustment.
// Unknown fields are skipped, as proto.Unmarshal does.
func decodeBinary(data []byte, a *Adjustment) error {
	*a = Adjustment{}
	// One string for the whole payload: every string field is a substring
	// of it, so decoding costs one allocation.
	s := string(data)
	var eventTime string
	for i := 0; i < len(data); {
		num, typ, n := protowire.ConsumeTag(data[i:])
		if n >= 0 && !num.IsValid() {
			n = -1
		}
		if n < 0 {
			return invalid(CodeUndecodable, "protobuf: %v at byte %d", protowire.ParseError(n), i)
		}
		i += n
		switch {
		case typ == protowire.BytesType && (num == 1 || num == 2 || num == 3 || num == 6 || num == 7):
			v, n := protowire.ConsumeBytes(data[i:])
			if n < 0 {
				return invalid(CodeUndecodable, "protobuf: field %d: %v", num, protowire.ParseError(n))
			}
			if !utf8.Valid(v) {
				return invalid(CodeSchemaMismatch, "protobuf: string field %d is not valid UTF-8", num)
			}
			start := i + n - len(v)
			str := s[start : start+len(v)]
			i += n
			switch num {
			case 1:
				a.EventID = str
			case 2:
				a.SKU = str
			case 3:
				a.LocationID = str
			case 6:
				eventTime = str
			case 7:
				a.Source = str
			}
		case typ == protowire.VarintType && (num == 4 || num == 5):
			v, n := protowire.ConsumeVarint(data[i:])
			if n < 0 {
				return invalid(CodeUndecodable, "protobuf: field %d: %v", num, protowire.ParseError(n))
			}
			i += n
			if num == 4 {
				a.Reason = Reason(int32(v))
			} else {
				a.Quantity = int64(v)
			}
		default: // unknown fields, and known ones with another wire type, are skipped as proto.Unmarshal does
			n := protowire.ConsumeFieldValue(num, typ, data[i:])
			if n < 0 {
				return invalid(CodeUndecodable, "protobuf: field %d: %v", num, protowire.ParseError(n))
			}
			i += n
		}
	}
	return setTime(a, eventTime)
}

func setTime(a *Adjustment, s string) error {
	if s == "" {
		return nil // Validate reports the missing time
	}
	t, err := parseTime(s)
	if err != nil {
		return invalid(CodeBadTime, "event_time %q is not RFC 3339", s)
	}
	if t == 0 {
		t = 1 // the epoch itself is out of range, not missing
	}
	a.EventTime = t
	return nil
}

// decodeJSON decodes the proto3 JSON form of InventoryAdjustment, the way
// Pub/Sub's JSON schema encoding does: field names in proto or JSON style,
// int64 as a number or a string, the reason as its name or number, unknown
// fields rejected. The common flat form is scanned without reflection;
// anything unusual (escapes, nulls, exponents) goes through protojson.
func decodeJSON(data []byte, a *Adjustment) error {
	*a = Adjustment{}
	ok, err := scanJSON(data, a)
	if ok {
		return err
	}
	return decodeJSONSlow(data, a)
}

func decodeJSONSlow(data []byte, a *Adjustment) error {
	*a = Adjustment{}
	if !json.Valid(data) {
		return invalid(CodeUndecodable, "payload is not valid JSON")
	}
	var m inventoryv1.InventoryAdjustment
	if err := protojson.Unmarshal(data, &m); err != nil {
		if strings.Contains(err.Error(), "enum") {
			return invalid(CodeUnknownReason, "reason: %v", err)
		}
		return invalid(CodeSchemaMismatch, "%v", err)
	}
	return fromProto(&m, a)
}

// fromProto copies a decoded wire message into a.
func fromProto(m *inventoryv1.InventoryAdjustment, a *Adjustment) error {
	*a = Adjustment{
		EventID:    m.GetEventId(),
		SKU:        m.GetSku(),
		LocationID: m.GetLocationId(),
		Reason:     Reason(m.GetReason()),
		Quantity:   m.GetQuantity(),
		Source:     m.GetSource(),
	}
	return setTime(a, m.GetEventTime())
}

// MarshalJSON renders a in the proto3 JSON form that Pub/Sub's JSON schema
// encoding accepts, with the contract's field names.
func MarshalJSON(a *Adjustment) ([]byte, error) {
	return protojson.MarshalOptions{UseProtoNames: true}.Marshal(a.proto())
}

// MarshalBinary renders a in the protobuf wire form.
func MarshalBinary(a *Adjustment) ([]byte, error) {
	return proto.Marshal(a.proto())
}

// scanJSON decodes the flat object form. It returns ok=false when the input
// leaves that form, so that the caller can fall back to protojson.
func scanJSON(b []byte, a *Adjustment) (ok bool, err error) {
	s := string(b) // one allocation; fields are substrings
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false, nil
	}
	i = skipWS(s, i+1)
	var seen uint8
	var eventTime string
	var reasonErr error
	if i < len(s) && s[i] == '}' {
		return skipWS(s, i+1) == len(s), nil
	}
	for {
		key, j, ok := scanString(s, i)
		if !ok {
			return false, nil
		}
		i = skipWS(s, j)
		if i >= len(s) || s[i] != ':' {
			return false, nil
		}
		i = skipWS(s, i+1)
		var bit uint8
		switch key {
		case "event_id", "eventId":
			bit = 1
			a.EventID, i, ok = scanString(s, i)
		case "sku":
			bit = 2
			a.SKU, i, ok = scanString(s, i)
		case "location_id", "locationId":
			bit = 4
			a.LocationID, i, ok = scanString(s, i)
		case "event_time", "eventTime":
			bit = 8
			eventTime, i, ok = scanString(s, i)
		case "source":
			bit = 16
			a.Source, i, ok = scanString(s, i)
		case "quantity":
			bit = 32
			a.Quantity, i, ok = scanInt(s, i)
		case "reason":
			bit = 64
			var r Reason
			if r, i, ok, reasonErr = scanReason(s, i); ok && reasonErr == nil {
				a.Reason = r
			}
		default:
			return false, nil // unknown field, or an unusual spelling: let protojson judge
		}
		if !ok || seen&bit != 0 {
			return false, nil
		}
		seen |= bit
		i = skipWS(s, i)
		if i >= len(s) {
			return false, nil
		}
		if s[i] == '}' {
			if skipWS(s, i+1) != len(s) {
				return false, nil
			}
			break
		}
		if s[i] != ',' {
			return false, nil
		}
		i = skipWS(s, i+1)
	}
	if reasonErr != nil {
		return true, reasonErr
	}
	return true, setTime(a, eventTime)
}

// scanReason scans a reason at s[i:], by name or by number; a name the
// contract lacks is an error of the event, not of its JSON.
func scanReason(s string, i int) (r Reason, next int, ok bool, err error) {
	if i < len(s) && s[i] == '"' {
		name, next, ok := scanString(s, i)
		if !ok {
			return 0, next, false, nil
		}
		if v, found := inventoryv1.InventoryAdjustment_Reason_value[name]; found {
			return Reason(v), next, true, nil
		}
		return 0, next, true, invalid(CodeUnknownReason, "reason %q is not one of the contract's", name)
	}
	v, next, ok := scanInt(s, i)
	return Reason(v), next, ok && v >= -1<<31 && v < 1<<31, nil
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string without escapes or control characters.
func scanString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(s); j++ {
		c := s[j]
		if c == '"' {
			return s[i+1 : j], j + 1, true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return "", i, false // escapes and non-ASCII: protojson checks them
		}
	}
	return "", i, false
}

// scanInt reads an int64 as a plain JSON integer or a quoted one.
func scanInt(s string, i int) (int64, int, bool) {
	quoted := i < len(s) && s[i] == '"'
	j := i
	if quoted {
		j++
	}
	start := j
	if j < len(s) && s[j] == '-' {
		j++
	}
	digits := j
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == digits || j-digits > 19 || (s[digits] == '0' && j-digits > 1) {
		return 0, i, false
	}
	v, err := strconv.ParseInt(s[start:j], 10, 64)
	if err != nil {
		return 0, i, false
	}
	if quoted {
		if j >= len(s) || s[j] != '"' {
			return 0, i, false
		}
		j++
	} else if j < len(s) && (s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
		return 0, i, false
	}
	return v, j, true
}
