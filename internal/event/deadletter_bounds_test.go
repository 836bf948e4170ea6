package event_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/event"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// TestDeadLetterMessageFitsPubSub builds the dead letters of inputs at and
// past Pub/Sub's limits: each message fits them, keeps the size and hash of
// the whole payload, and says when attributes were cut.
func TestDeadLetterMessageFitsPubSub(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 9_000_000)
	manyAttrs := map[string]string{}
	for i := range 103 { // 100, plus the three a schema adds
		manyAttrs[fmt.Sprintf("k%03d", i)+strings.Repeat("k", 252)] = strings.Repeat("v", 1024)
	}
	hugeAttrs := map[string]string{}
	for i := range 10 {
		hugeAttrs[fmt.Sprintf("big%d", i)] = strings.Repeat("é", 1<<19) // 1 MB of 2-byte runes
	}
	cases := []struct {
		name      string
		dl        *inventoryv1.DeadLetter
		truncated bool
	}{
		{"9 MB payload", &inventoryv1.DeadLetter{Reason: event.CodeTooLarge, Payload: big}, false},
		{"103 attributes at Pub/Sub's limits", &inventoryv1.DeadLetter{Reason: event.CodeUnknownReason, Payload: []byte("{}"), Attributes: manyAttrs}, false},
		{"10 attributes of 1 MB", &inventoryv1.DeadLetter{Reason: event.CodeWrongSign, Payload: []byte("{}"), Attributes: hugeAttrs}, true},
		{"1 MB error and origin", &inventoryv1.DeadLetter{Reason: event.CodeUndecodable, Error: strings.Repeat("e", 1<<20),
			Origin: strings.Repeat("o", 1<<20), Payload: big[:10]}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, attrs, err := event.DeadLetterMessage(c.dl)
			if err != nil {
				t.Fatal(err)
			}
			size := len(data)
			for k, v := range attrs {
				size += len(k) + len(v)
				if len(k) > event.PubSubMaxAttrKeyBytes || len(v) > event.PubSubMaxAttrValueBytes {
					t.Errorf("attribute %q: %d and %d bytes, past Pub/Sub's limits", k, len(k), len(v))
				}
			}
			if size > event.PubSubMaxMessageBytes || len(attrs) > event.PubSubMaxAttributes {
				t.Errorf("message of %d bytes and %d attributes, past Pub/Sub's limits", size, len(attrs))
			}
			var got inventoryv1.DeadLetter
			if err := protojson.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			whole := c.dl.GetPayload()
			h := sha256.Sum256(whole)
			if got.GetPayloadBytes() != int64(len(whole)) || got.GetPayloadSha256() != hex.EncodeToString(h[:]) {
				t.Errorf("payload_bytes %d sha256 %s, want %d and the whole payload's hash", got.GetPayloadBytes(), got.GetPayloadSha256(), len(whole))
			}
			if want := whole[:min(len(whole), event.MaxDeadLetterPayload)]; !bytes.Equal(got.GetPayload(), want) {
				t.Errorf("payload of %d bytes, want the first %d", len(got.GetPayload()), len(want))
			}
			if got.GetAttributesTruncated() != c.truncated {
				t.Errorf("attributes_truncated %v, want %v", got.GetAttributesTruncated(), c.truncated)
			}
			if !c.truncated && len(got.GetAttributes()) != len(c.dl.GetAttributes()) {
				t.Errorf("%d attributes kept of %d", len(got.GetAttributes()), len(c.dl.GetAttributes()))
			}
			for k, v := range got.GetAttributes() {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					t.Errorf("attribute %q cut inside a rune", k)
				}
			}
			if attrs[event.AttrDeadLetterOrigin] != got.GetOrigin() || len(got.GetError()) > event.MaxDeadLetterError {
				t.Errorf("origin attribute %d bytes, envelope %d; error %d bytes", len(attrs[event.AttrDeadLetterOrigin]), len(got.GetOrigin()), len(got.GetError()))
			}
		})
	}
}

// TestBoundDeadLetterKeepsABoundedPayload: a payload bounded before (a
// dead_letters row, whose payload is already cut) keeps the size and hash
// of its whole.
func TestBoundDeadLetterKeepsABoundedPayload(t *testing.T) {
	kept, size, sum := event.BoundPayload(bytes.Repeat([]byte("y"), 100_000))
	if len(kept) != event.MaxDeadLetterPayload || size != 100_000 {
		t.Fatalf("BoundPayload kept %d of %d bytes", len(kept), size)
	}
	dl := event.BoundDeadLetter(&inventoryv1.DeadLetter{Payload: kept, PayloadBytes: size, PayloadSha256: sum})
	if dl.GetPayloadBytes() != 100_000 || dl.GetPayloadSha256() != sum || len(dl.GetPayload()) != event.MaxDeadLetterPayload {
		t.Errorf("bounded again: %d bytes, hash %s, payload %d", dl.GetPayloadBytes(), dl.GetPayloadSha256(), len(dl.GetPayload()))
	}
}
