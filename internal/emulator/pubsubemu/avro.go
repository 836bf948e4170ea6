package pubsubemu

import (
	"bytes"
	"errors"
	"fmt"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/linkedin/goavro/v2"
)

// AVRO schemas (https://cloud.google.com/pubsub/docs/schemas): BINARY
// messages are the Avro binary encoding of one datum, JSON messages the Avro
// JSON encoding (https://avro.apache.org/docs/1.11.1/specification/#json-encoding):
// a union value other than null is an object naming its branch, and a
// record's unknown fields are refused. Both are decoded with
// github.com/linkedin/goavro, and every byte must be used.

func compileAvro(def string) (*goavro.Codec, error) { return goavro.NewCodec(def) }

func validateAvro(c *goavro.Codec, enc pb.Encoding, data []byte) error {
	switch enc {
	case pb.Encoding_BINARY:
		_, rest, err := c.NativeFromBinary(data)
		if err != nil {
			return fmt.Errorf("message does not match the schema in BINARY encoding: %w", err)
		}
		if len(rest) != 0 {
			return errors.New("message does not match the schema in BINARY encoding: bytes left after the datum")
		}
		return nil
	case pb.Encoding_JSON:
		_, rest, err := c.NativeFromTextual(data)
		if err != nil {
			return fmt.Errorf("message does not match the schema in JSON encoding: %w", err)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return errors.New("message does not match the schema in JSON encoding: more than one JSON value")
		}
		return nil
	default:
		return errors.New("encoding must be JSON or BINARY")
	}
}
