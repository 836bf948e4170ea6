package pubsubemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/hamba/avro/v2"
)

// AVRO schemas (https://cloud.google.com/pubsub/docs/schemas): BINARY
// messages are Avro binary encoding of one datum (decoded with
// github.com/hamba/avro, every byte must be used); JSON messages are the Avro
// JSON encoding (https://avro.apache.org/docs/1.11.1/specification/#json-encoding):
// a union value other than null is an object naming its branch, bytes and
// fixed are strings of code points 0-255, a record's missing fields need a
// default and unknown fields are refused.

func compileAvro(def string) (avro.Schema, error) {
	// A cache of its own: named types of one definition do not leak into another.
	return avro.ParseWithCache(def, "", &avro.SchemaCache{})
}

func validateAvro(sch avro.Schema, enc pb.Encoding, data []byte) error {
	switch enc {
	case pb.Encoding_BINARY:
		r := avro.NewReader(nil, 0).Reset(data)
		r.ReadNext(sch)
		if r.Error != nil {
			return fmt.Errorf("message does not match the schema in BINARY encoding: %w", r.Error)
		}
		if r.Peek(); r.Error == nil {
			return errors.New("message does not match the schema in BINARY encoding: bytes left after the datum")
		}
		return nil
	case pb.Encoding_JSON:
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return fmt.Errorf("message does not match the schema in JSON encoding: %w", err)
		}
		if d.More() {
			return errors.New("message does not match the schema in JSON encoding: more than one JSON value")
		}
		if err := avroJSON(sch, v, "$"); err != nil {
			return fmt.Errorf("message does not match the schema in JSON encoding: %w", err)
		}
		return nil
	default:
		return errors.New("encoding must be JSON or BINARY")
	}
}

// avroJSON checks a decoded JSON value against an Avro schema.
func avroJSON(sch avro.Schema, v any, path string) error {
	bad := func(want string) error { return fmt.Errorf("%s: %s is not %s", path, describe(v), want) }
	switch s := sch.(type) {
	case *avro.RefSchema:
		return avroJSON(s.Schema(), v, path)
	case *avro.RecordSchema:
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("a record " + s.FullName())
		}
		known := make(map[string]bool, len(s.Fields()))
		for _, f := range s.Fields() {
			known[f.Name()] = true
			fv, present := obj[f.Name()]
			if !present {
				if f.HasDefault() {
					continue
				}
				return fmt.Errorf("%s: field %q of %s is missing and has no default", path, f.Name(), s.FullName())
			}
			if err := avroJSON(f.Type(), fv, path+"."+f.Name()); err != nil {
				return err
			}
		}
		for k := range obj {
			if !known[k] {
				return fmt.Errorf("%s: field %q is not in %s", path, k, s.FullName())
			}
		}
		return nil
	case *avro.EnumSchema:
		str, ok := v.(string)
		if !ok || !slices.Contains(s.Symbols(), str) {
			return bad(fmt.Sprintf("a symbol of %s %v", s.FullName(), s.Symbols()))
		}
		return nil
	case *avro.ArraySchema:
		arr, ok := v.([]any)
		if !ok {
			return bad("an array")
		}
		for i, x := range arr {
			if err := avroJSON(s.Items(), x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case *avro.MapSchema:
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("a map")
		}
		for k, x := range obj {
			if err := avroJSON(s.Values(), x, fmt.Sprintf("%s[%q]", path, k)); err != nil {
				return err
			}
		}
		return nil
	case *avro.UnionSchema:
		if v == nil {
			if !s.Contains(avro.Null) {
				return bad("a branch of a union without null")
			}
			return nil
		}
		obj, ok := v.(map[string]any)
		if !ok || len(obj) != 1 {
			return bad(`a union value {"<branch>": value}`)
		}
		for name, x := range obj {
			for _, branch := range s.Types() {
				if branchName(branch) == name {
					return avroJSON(branch, x, path+"."+name)
				}
			}
			return fmt.Errorf("%s: %q is not a branch of the union", path, name)
		}
	case *avro.FixedSchema:
		str, ok := v.(string)
		if !ok || !latin1(str) || len([]rune(str)) != s.Size() {
			return bad(fmt.Sprintf("a string of %d code points 0-255 (fixed %s)", s.Size(), s.FullName()))
		}
		return nil
	case *avro.PrimitiveSchema:
		return avroPrimitive(s.Type(), v, bad)
	}
	return fmt.Errorf("%s: unsupported schema type %s", path, sch.Type())
}

func avroPrimitive(t avro.Type, v any, bad func(string) error) error {
	switch t {
	case avro.Null:
		if v != nil {
			return bad("null")
		}
	case avro.Boolean:
		if _, ok := v.(bool); !ok {
			return bad("a boolean")
		}
	case avro.String:
		if _, ok := v.(string); !ok {
			return bad("a string")
		}
	case avro.Bytes:
		if str, ok := v.(string); !ok || !latin1(str) {
			return bad("a string of code points 0-255 (bytes)")
		}
	case avro.Int, avro.Long:
		n, ok := v.(json.Number)
		if !ok {
			return bad("an integer")
		}
		i, err := n.Int64()
		if err != nil || (t == avro.Int && (i < math.MinInt32 || i > math.MaxInt32)) {
			return bad("an " + string(t))
		}
	case avro.Float, avro.Double:
		if _, ok := v.(json.Number); !ok {
			return bad("a number")
		}
	default:
		return bad(string(t))
	}
	return nil
}

// branchName is how the Avro JSON encoding names a union branch.
func branchName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema().FullName()
	}
	return string(s.Type())
}

func latin1(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r > 255 })
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %.40q", x)
	case json.Number:
		return "number " + x.String()
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
