// Package badinput reads the bad-input corpus in testdata/badinput: the
// Pub/Sub payloads and CSV files that every layer (decoders, publisher,
// consumer, streaming job) must dead-letter, with the reason each must get.
// The tests of those layers share it.
package badinput

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/event"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// Case is one entry of cases.json: a payload file and the dead-letter
// reason it must get when published with Encoding.
type Case struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Encoding string `json:"encoding"`
	Reason   string `json:"reason"`
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

// Payload returns the bytes of c's file in dir.
func (c Case) Payload(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, c.File))
	if err != nil {
		return nil, fmt.Errorf("badinput: case %s: %w", c.Name, err)
	}
	return b, nil
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

// PublishAll publishes the payload of every case through pub, with its
// encoding attribute, waiting for each, and returns the reason each payload
// must get, keyed by the payload.
func PublishAll(ctx context.Context, pub *pubsub.Publisher, dir string, cases []Case) (map[string]string, error) {
	want := make(map[string]string, len(cases))
	for _, c := range cases {
		data, err := c.Payload(dir)
		if err != nil {
			return nil, err
		}
		want[string(data)] = c.Reason
		if _, err := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: map[string]string{event.AttrEncoding: c.Encoding}}).Get(ctx); err != nil {
			return nil, fmt.Errorf("badinput: publish %s: %w", c.Name, err)
		}
	}
	return want, nil
}

// CheckDeadLetter checks that a message from the dead-letter topic is a
// DeadLetter envelope in JSON whose attributes are exactly the contract's
// (event.DeadLetterAttrKeys) and agree with the envelope. It returns the
// envelope.
func CheckDeadLetter(data []byte, attrs map[string]string) (*inventoryv1.DeadLetter, error) {
	var dl inventoryv1.DeadLetter
	if err := protojson.Unmarshal(data, &dl); err != nil {
		return nil, fmt.Errorf("dead letter %.60q: %w", data, err)
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
