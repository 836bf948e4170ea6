// Package badinput reads the bad-input corpus in testdata/badinput: the
// Pub/Sub payloads and CSV files that every layer (decoders, publisher,
// consumer, streaming job) must dead-letter, with the reason each must get.
// The tests of those layers share it. Cases at Pub/Sub's size limits (a
// 9 MB payload, 1 MB attribute values) are built in code from their
// description in cases.json rather than committed.
package badinput

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/event"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// Case is one entry of cases.json: a payload (a file, or one built in
// code), the attributes its message carries, and the dead-letter reason it
// must get when published with Encoding.
type Case struct {
	Name string `json:"name"`
	File string `json:"file"`
	// Generate, instead of File, builds a payload of Size bytes:
	// "padded_event" is a valid-looking JSON event padded with blanks,
	// "long_event_id" a JSON event whose event_id fills it.
	Generate string `json:"generate"`
	Size     int    `json:"size"`
	// Attributes, if set, are attributes built in code (see attrs).
	Attributes *AttrSpec `json:"attributes"`
	// PubSubRefuses says that Pub/Sub refuses the message at publish
	// (INVALID_ARGUMENT: an attribute past its limits): it reaches a job
	// only through a broker that checks nothing, such as pstest.
	PubSubRefuses bool   `json:"pubsub_refuses"`
	Encoding      string `json:"encoding"`
	Reason        string `json:"reason"`
}

// AttrSpec describes a message's attributes: Count in all (the encoding
// attribute included), with keys of KeyBytes and values of ValueBytes bytes.
type AttrSpec struct {
	Count      int `json:"count"`
	KeyBytes   int `json:"key_bytes"`
	ValueBytes int `json:"value_bytes"`
}

// CSVCase is one entry of csv/cases.json: a CSV file, how many of its rows
// are valid, and the line and reason of each rejected row; or, for a file
// whose header is unusable, the error it must give.
type CSVCase struct {
	File        string      `json:"file"`
	Accepted    int         `json:"accepted"`
	Rejected    []Rejection `json:"rejected"`
	HeaderError string      `json:"header_error"`
}

// Rejection is a CSV row that must be dead-lettered.
type Rejection struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// Cases reads dir/cases.json.
func Cases(dir string) ([]Case, error) {
	var cs []Case
	return cs, load(filepath.Join(dir, "cases.json"), &cs)
}

// CSVCases reads dir/csv/cases.json.
func CSVCases(dir string) ([]CSVCase, error) {
	var cs []CSVCase
	return cs, load(filepath.Join(dir, "csv", "cases.json"), &cs)
}

// Payload returns the bytes of c's file in dir, or the payload c
// generates.
func (c Case) Payload(dir string) ([]byte, error) {
	if c.Generate != "" {
		return c.generate()
	}
	b, err := os.ReadFile(filepath.Join(dir, c.File))
	if err != nil {
		return nil, fmt.Errorf("badinput: case %s: %w", c.Name, err)
	}
	return b, nil
}

// generate builds c's payload of c.Size bytes.
func (c Case) generate() ([]byte, error) {
	const eventJSON = `{"event_id": %q, "sku": "SKU-1", "location_id": "STORE-1", "reason": "RECEIVED", "quantity": 1, "event_time": "2026-11-24T10:00:00Z", "source": "pos"}`
	switch c.Generate {
	case "padded_event":
		b := []byte(fmt.Sprintf(eventJSON, "big-padded-"+c.Name))
		if len(b) < c.Size {
			b = append(b, bytes.Repeat([]byte(" "), c.Size-len(b))...)
		}
		return b, nil
	case "long_event_id":
		n := c.Size - len(fmt.Sprintf(eventJSON, ""))
		if n < 1 {
			return nil, fmt.Errorf("badinput: case %s: size %d too small", c.Name, c.Size)
		}
		return []byte(fmt.Sprintf(eventJSON, strings.Repeat("e", n))), nil
	}
	return nil, fmt.Errorf("badinput: case %s: unknown generator %q", c.Name, c.Generate)
}

// attrs returns the attributes of c's message: the encoding attribute, and
// those c.Attributes describes.
func (c Case) attrs() map[string]string {
	attrs := map[string]string{event.AttrEncoding: c.Encoding}
	if a := c.Attributes; a != nil {
		for i := 1; i < a.Count; i++ {
			k := fmt.Sprintf("x-%03d-", i)
			k += strings.Repeat("k", max(0, a.KeyBytes-len(k)))
			attrs[k] = strings.Repeat("v", a.ValueBytes)
		}
	}
	return attrs
}

// Message returns c's Pub/Sub message: its payload and attrs.
func (c Case) Message(dir string) (*pubsub.Message, error) {
	data, err := c.Payload(dir)
	if err != nil {
		return nil, err
	}
	return &pubsub.Message{Data: data, Attributes: c.attrs()}, nil
}

// PayloadSHA256 returns the SHA-256 of a payload in lowercase hex, as
// dead letters record it (payload_sha256).
func PayloadSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Path returns the path of c's file in dir.
func (c CSVCase) Path(dir string) string { return filepath.Join(dir, "csv", c.File) }

func load(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("badinput: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("badinput: %s: %w", path, err)
	}
	return nil
}

// Published is what PublishAll published.
type Published struct {
	// Want is the reason each published payload must get, keyed by the
	// payload's SHA-256 (PayloadSHA256).
	Want map[string]string
	// Refused are the cases Pub/Sub refused at publish, as it must
	// (PubSubRefuses).
	Refused []string
}

// PublishAll publishes the message of every case through pub, waiting for
// each. A case that Pub/Sub must refuse may be refused with
// INVALID_ARGUMENT, and is then listed in Refused (a broker that checks
// nothing, such as pstest, takes it); any other failure is an error.
func PublishAll(ctx context.Context, pub *pubsub.Publisher, dir string, cases []Case) (Published, error) {
	out := Published{Want: make(map[string]string, len(cases))}
	for _, c := range cases {
		m, err := c.Message(dir)
		if err != nil {
			return out, err
		}
		if _, err := pub.Publish(ctx, m).Get(ctx); err != nil {
			if c.PubSubRefuses && status.Code(err) == codes.InvalidArgument {
				out.Refused = append(out.Refused, c.Name)
				continue
			}
			return out, fmt.Errorf("badinput: publish %s: %w", c.Name, err)
		}
		out.Want[PayloadSHA256(m.Data)] = c.Reason
	}
	return out, nil
}

// CheckDeadLetter checks that a message from the dead-letter topic is a
// DeadLetter envelope in JSON within Pub/Sub's limits, whose attributes are
// exactly the contract's (event.DeadLetterAttrKeys) and agree with the
// envelope, and whose payload is cut to event.MaxDeadLetterPayload with
// the size and hash of the whole. It returns the envelope.
func CheckDeadLetter(data []byte, attrs map[string]string) (*inventoryv1.DeadLetter, error) {
	var dl inventoryv1.DeadLetter
	if err := protojson.Unmarshal(data, &dl); err != nil {
		return nil, fmt.Errorf("dead letter %.60q: %w", data, err)
	}
	size := len(data)
	for k, v := range attrs {
		size += len(k) + len(v)
		if len(k) > event.PubSubMaxAttrKeyBytes || len(v) > event.PubSubMaxAttrValueBytes {
			return &dl, fmt.Errorf("dead letter %s: attribute %.40q past Pub/Sub's limits", dl.GetReason(), k)
		}
	}
	if size > event.PubSubMaxMessageBytes {
		return &dl, fmt.Errorf("dead letter %s: %d bytes, past Pub/Sub's %d", dl.GetReason(), size, event.PubSubMaxMessageBytes)
	}
	if p := dl.GetPayload(); len(p) > event.MaxDeadLetterPayload ||
		(len(p) > 0 && (dl.GetPayloadBytes() < int64(len(p)) || len(dl.GetPayloadSha256()) != sha256.Size*2)) ||
		(int64(len(p)) == dl.GetPayloadBytes() && len(p) > 0 && PayloadSHA256(p) != dl.GetPayloadSha256()) {
		return &dl, fmt.Errorf("dead letter %s: payload of %d bytes with payload_bytes %d and payload_sha256 %q",
			dl.GetReason(), len(p), dl.GetPayloadBytes(), dl.GetPayloadSha256())
	}
	keys := slices.Sorted(maps.Keys(attrs))
	if !slices.Equal(keys, event.DeadLetterAttrKeys) {
		return &dl, fmt.Errorf("dead letter %s: attribute keys %v, want %v", dl.GetReason(), keys, event.DeadLetterAttrKeys)
	}
	if attrs[event.AttrDeadLetterReason] != dl.GetReason() || attrs[event.AttrDeadLetterStage] != dl.GetStage() ||
		attrs[event.AttrDeadLetterOrigin] != dl.GetOrigin() {
		return &dl, fmt.Errorf("dead letter attributes %v disagree with the envelope (reason %s, stage %s, origin %s)",
			attrs, dl.GetReason(), dl.GetStage(), dl.GetOrigin())
	}
	return &dl, nil
}
