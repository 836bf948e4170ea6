package event

import (
	"errors"
	"hash/fnv"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func code(err error) string {
	var inv *Invalid
	if errors.As(err, &inv) {
		return inv.Code
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestDecodeJSON(t *testing.T) {
	good := Adjustment{EventID: "e-1", SKU: "SKU-1", LocationID: "S1", Reason: Sold, Quantity: -3,
		EventTime: time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC).UnixMicro(), Source: "pos"}
	tests := []struct {
		name, in, code string
	}{
		{"proto names", `{"event_id":"e-1","sku":"SKU-1","location_id":"S1","reason":"SOLD","quantity":-3,"event_time":"2026-11-24T09:30:00Z","source":"pos"}`, ""},
		{"json names, blanks, quoted int64", ` { "eventId" : "e-1", "sku":"SKU-1", "locationId":"S1", "reason":"SOLD", "quantity":"-3", "eventTime":"2026-11-24T10:30:00+01:00", "source":"pos" } `, ""},
		{"reason by number", `{"event_id":"e-1","sku":"SKU-1","location_id":"S1","reason":2,"quantity":-3,"event_time":"2026-11-24T09:30:00Z","source":"pos"}`, ""},
		{"escaped string", `{"event_id":"e\u002d1","sku":"SKU-1","location_id":"S1","reason":"SOLD","quantity":-3,"event_time":"2026-11-24T09:30:00Z","source":"pos"}`, ""},
		{"not JSON", `{"event_id":`, CodeUndecodable},
		{"binary garbage", "\x00\x01\x02\xff", CodeUndecodable},
		{"unknown field", `{"event_id":"e-1","colour":"red"}`, CodeSchemaMismatch},
		{"wrong type", `{"event_id":"e-1","quantity":"lots"}`, CodeSchemaMismatch},
		{"fraction", `{"event_id":"e-1","quantity":1.5}`, CodeSchemaMismatch},
		{"past int64", `{"event_id":"e-1","quantity":9223372036854775808}`, CodeSchemaMismatch},
		{"unknown reason", `{"event_id":"e-1","reason":"STOLEN"}`, CodeUnknownReason},
		{"duplicate key", `{"event_id":"e-1","event_id":"e-2"}`, CodeSchemaMismatch},
		{"array", `[1,2]`, CodeSchemaMismatch},
		{"bad time", `{"event_id":"e-1","event_time":"yesterday"}`, CodeBadTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Adjustment
			err := decodeJSON([]byte(tt.in), &a)
			if code(err) != tt.code {
				t.Fatalf("error %v, want code %q", err, tt.code)
			}
			if tt.code == "" && a != good {
				t.Fatalf("decoded %+v, want %+v", a, good)
			}
		})
	}
}

// TestJSONFastPathAgreesWithProtojson checks the scanner against protojson
// on every accepted input of the table and a few more.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e-1","sku":"SKU-1","location_id":"S1","reason":"SOLD","quantity":-3,"event_time":"2026-11-24T09:30:00Z","source":"pos"}`,
		`{"eventId":"x","quantity":"7","reason":6}`, `{}`, `{"quantity":-0}`, `{"quantity":007}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow Adjustment
		errFast := decodeJSON(data, &fast)
		errSlow := decodeJSONSlow(data, &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("fast err %v, protojson err %v on %q", errFast, errSlow, data)
		}
		if errFast == nil && fast != slow {
			t.Fatalf("fast %+v, protojson %+v on %q", fast, slow, data)
		}
	})
}

func FuzzDecodeBinary(f *testing.F) {
	b, _ := proto.Marshal(&inventoryv1.InventoryAdjustment{EventId: "e", Sku: "s", LocationId: "l", Reason: 2, Quantity: -4, EventTime: "2026-11-24T09:30:00Z", Source: "x"})
	f.Add(b)
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Adjustment
		err := decodeBinary(data, &a)
		var m inventoryv1.InventoryAdjustment
		perr := proto.Unmarshal(data, &m)
		if perr != nil {
			if err == nil {
				t.Fatalf("accepted what proto.Unmarshal rejects (%v): %q", perr, data)
			}
			return
		}
		if code(err) == CodeBadTime {
			return
		}
		if err != nil {
			t.Fatalf("rejected (%v) what proto.Unmarshal accepts: %q", err, data)
		}
		var want Adjustment
		if fromProto(&m, &want) == nil && a != want {
			t.Fatalf("decoded %+v, proto gives %+v", a, want)
		}
	})
}

func TestBinaryRoundTrip(t *testing.T) {
	a := Adjustment{EventID: "e-9", SKU: "SKU-9", LocationID: "WH", Reason: Counted, Quantity: 42,
		EventTime: now.Add(-time.Hour).UnixMicro(), Source: "wms"}
	b, err := MarshalBinary(&a)
	if err != nil {
		t.Fatal(err)
	}
	var got Adjustment
	if err := Decode(b, EncodingBinary, &got); err != nil || got != a {
		t.Fatalf("got %+v %v, want %+v", got, err, a)
	}
	j, _ := MarshalJSON(&a)
	if err := Decode(j, EncodingJSON, &got); err != nil || got != a {
		t.Fatalf("json %s: got %+v %v", j, got, err)
	}
	var m inventoryv1.InventoryAdjustment
	if err := protojson.Unmarshal(j, &m); err != nil {
		t.Fatalf("protojson rejects our JSON %s: %v", j, err)
	}
	if err := Decode([]byte("{}"), "AVRO", &got); code(err) != CodeBadEncoding {
		t.Fatalf("encoding AVRO: %v", err)
	}
	if err := Decode(make([]byte, maxPayloadLen+1), EncodingBinary, &got); code(err) != CodeTooLarge {
		t.Fatalf("large: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Adjustment{EventID: "e-1", SKU: "SKU-1", LocationID: "S1", Reason: Sold, Quantity: -1, EventTime: now.Add(-time.Hour).UnixMicro()}
	tests := []struct {
		name string
		mut  func(*Adjustment)
		code string
	}{
		{"valid", func(*Adjustment) {}, ""},
		{"no id", func(a *Adjustment) { a.EventID = "" }, codeMissingEventID},
		{"blank in id", func(a *Adjustment) { a.EventID = "e 1" }, codeBadEventID},
		{"no sku", func(a *Adjustment) { a.SKU = "" }, codeMissingSKU},
		{"sku with blank", func(a *Adjustment) { a.SKU = " SKU-1" }, codeBadSKU},
		{"unicode sku", func(a *Adjustment) { a.SKU = "SKÜ-1" }, codeBadSKU},
		{"long sku", func(a *Adjustment) { a.SKU = strings.Repeat("A", 65) }, codeBadSKU},
		{"no location", func(a *Adjustment) { a.LocationID = "" }, codeMissingLocation},
		{"control in location", func(a *Adjustment) { a.LocationID = "S\x001" }, codeBadLocation},
		{"no reason", func(a *Adjustment) { a.Reason = 0 }, CodeUnknownReason},
		{"reason 99", func(a *Adjustment) { a.Reason = 99 }, CodeUnknownReason},
		{"no time", func(a *Adjustment) { a.EventTime = 0 }, codeMissingTime},
		{"ancient", func(a *Adjustment) { a.EventTime = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() }, codeTimeOutOfRange},
		{"far future", func(a *Adjustment) { a.EventTime = now.Add(48 * time.Hour).UnixMicro() }, codeTimeOutOfRange},
		{"huge", func(a *Adjustment) { a.Quantity = -MaxQuantity - 1 }, codeQuantityRange},
		{"negative count", func(a *Adjustment) { a.Reason, a.Quantity = Counted, -1 }, codeNegativeCount},
		{"zero count", func(a *Adjustment) { a.Reason, a.Quantity = Counted, 0 }, ""},
		{"positive sale", func(a *Adjustment) { a.Quantity = 1 }, CodeWrongSign},
		{"negative receipt", func(a *Adjustment) { a.Reason = Received }, CodeWrongSign},
		{"adjusted either way", func(a *Adjustment) { a.Reason, a.Quantity = Adjusted, 3 }, ""},
		{"bad source", func(a *Adjustment) { a.Source = "\xff" }, codeBadSource},
		{"long source", func(a *Adjustment) { a.Source = strings.Repeat("p", maxSourceLen+1) }, codeBadSource},
		{"escape in source", func(a *Adjustment) { a.Source = "pos\x1b[2J\x1b]0;owned\a" }, codeBadSource},
		{"bell in source", func(a *Adjustment) { a.Source = "pos\a" }, codeBadSource},
		{"newline in source", func(a *Adjustment) { a.Source = "pos\nfake log line" }, codeBadSource},
		{"tab in source", func(a *Adjustment) { a.Source = "pos\t1" }, codeBadSource},
		{"DEL in source", func(a *Adjustment) { a.Source = "pos\x7f" }, codeBadSource},
		{"C1 CSI in source", func(a *Adjustment) { a.Source = "pos\u009b31m" }, codeBadSource},
		{"NUL in source", func(a *Adjustment) { a.Source = "pos\x00" }, codeBadSource},
		{"unicode source", func(a *Adjustment) { a.Source = "caisse n° 3 – Zürich 🛒" }, ""},
		{"source with blanks", func(a *Adjustment) { a.Source = "pos store 12" }, ""},
		{"escape in id", func(a *Adjustment) { a.EventID = "e\x1b[2J" }, codeBadEventID},
		{"bell in id", func(a *Adjustment) { a.EventID = "e\a" }, codeBadEventID},
		{"C1 in id", func(a *Adjustment) { a.EventID = "e\u009b" }, codeBadEventID},
		{"escape in sku", func(a *Adjustment) { a.SKU = "SKU\x1b" }, codeBadSKU},
	}
	for _, tt := range tests {
		a := ok
		tt.mut(&a)
		if got := code(Validate(&a, now)); got != tt.code {
			t.Errorf("%s: code %q, want %q", tt.name, got, tt.code)
		}
	}
}

func TestCSVReader(t *testing.T) {
	in := "\uFEFFevent_id,event_time,sku,location_id,reason,quantity,source,note\r\n" +
		"e1,2026-11-24T09:00:00Z,SKU-1,S1,RECEIVED,10,wms,x\r\n" +
		"e2,2026-11-24T09:05:00Z,SKU-1,S1,sold,-2,pos,\r\n" +
		"e3,2026-11-24T09:06:00Z,SKU-1,S1,STOLEN,-2,pos,\r\n" +
		"e4,2026-11-24T09:07:00Z,SKU-1,S1,SOLD,-2\r\n" +
		"e5,2026-11-24T09:08:00Z,SKU-1,S1,SOLD,abc,pos,\r\n" +
		"e6,2026-11-24T09:08:00Z,SKU-1,S1,SOLD,99999999999999999999,pos,\r\n" +
		"e7,2026-11-24T09:08:00Z,SKU-1,S1,SOLD,-1,\"po\"s,\r\n" +
		"e8,not-a-time,SKU-1,S1,SOLD,-1,pos,\r\n" +
		"e9,2026-11-24T09:09:00Z,SKU-1,S1,COUNTED,7,pos,\r\n"
	r, err := NewCSVReader(strings.NewReader(in), "in.csv")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id   string
		line int
		code string
	}
	want := []row{{"e1", 2, ""}, {"e2", 3, ""}, {"", 4, CodeUnknownReason}, {"", 5, codeBadCSV}, {"", 6, CodeBadQuantity},
		{"", 7, codeQuantityRange}, {"", 8, codeBadCSV}, {"", 9, CodeBadTime}, {"e9", 10, ""}}
	var got []row
	for {
		var a Adjustment
		err := r.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			got = append(got, row{"", re.Line, re.Err.Code})
			if !strings.HasPrefix(re.Error(), "in.csv:") {
				t.Errorf("error %q lacks the file and line", re.Error())
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, row{a.EventID, r.Line(), ""})
	}
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := NewCSVReader(strings.NewReader("id,sku\n"), "h.csv"); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Fatalf("bad header: %v", err)
	}
}

func BenchmarkDecodeValidate(b *testing.B) {
	data := []byte(`{"event_id":"evt-00000001","sku":"SKU-00042","location_id":"STORE-003","reason":"SOLD","quantity":-2,"event_time":"2026-11-24T09:30:00.123Z","source":"pos"}`)
	bin, _ := proto.Marshal(&inventoryv1.InventoryAdjustment{EventId: "evt-00000001", Sku: "SKU-00042", LocationId: "STORE-003", Reason: 2, Quantity: -2, EventTime: "2026-11-24T09:30:00.123Z", Source: "pos"})
	for _, c := range []struct {
		name, enc string
		data      []byte
	}{{"json", EncodingJSON, data}, {"binary", EncodingBinary, bin}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var a Adjustment
			for b.Loop() {
				if err := Decode(c.data, c.enc, &a); err != nil {
					b.Fatal(err)
				}
				if err := Validate(&a, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestKeyShard pins the shard hash to FNV-1a of sku, a zero byte and the
// location, which state layouts and summary parts rely on.
func TestKeyShard(t *testing.T) {
	for _, k := range []Key{{SKU: "SKU-00001", LocationID: "WH-001"}, {SKU: "a", LocationID: ""}, {SKU: "", LocationID: "b"}} {
		h := fnv.New32a()
		h.Write([]byte(k.SKU))
		h.Write([]byte{0})
		h.Write([]byte(k.LocationID))
		for _, n := range []int{1, 7, 32, 1024} {
			if got, want := k.Shard(n), int(h.Sum32()%uint32(n)); got != want {
				t.Errorf("%v.Shard(%d) = %d, want %d", k, n, got, want)
			}
		}
	}
}
