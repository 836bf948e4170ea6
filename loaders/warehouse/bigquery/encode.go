package bigquery

import (
	"encoding/base64"
	"fmt"
	"time"

	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// protoDescriptor builds the message descriptor of t's rows from its schema,
// as BigQuery expects it: proto2, self-contained (normalized).
func protoDescriptor(t *warehouse.Table) (protoreflect.MessageDescriptor, *descriptorpb.DescriptorProto, error) {
	ts, err := adapt.BQSchemaToStorageTableSchema(schema(t))
	if err != nil {
		return nil, nil, fmt.Errorf("convert schema: %w", err)
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(ts, "root")
	if err != nil {
		return nil, nil, fmt.Errorf("build descriptor: %w", err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("build descriptor: got %T", d)
	}
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		return nil, nil, fmt.Errorf("normalize descriptor: %w", err)
	}
	return md, dp, nil
}

// encoded is one row ready to send: its index in the batch and its bytes.
type encoded struct {
	index int
	data  []byte
}

// encodeProto encodes a row of table t, its values in column order (see
// warehouse.TableRows.Values), as a message of md.
func encodeProto(md protoreflect.MessageDescriptor, t *warehouse.Table, vals []any) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	for i, c := range t.Columns {
		fd := md.Fields().ByName(protoreflect.Name(c.Name))
		if fd == nil {
			return nil, fmt.Errorf("column %s missing from descriptor", c.Name)
		}
		var pv protoreflect.Value
		switch v := vals[i].(type) {
		case nil:
			continue
		case string:
			pv = protoreflect.ValueOfString(v)
		case int64:
			pv = protoreflect.ValueOfInt64(v)
		case float64:
			pv = protoreflect.ValueOfFloat64(v)
		case bool:
			pv = protoreflect.ValueOfBool(v)
		case []byte:
			pv = protoreflect.ValueOfBytes(v)
		case time.Time:
			if c.Type == warehouse.TypeDate {
				pv = protoreflect.ValueOfInt32(epochDays(v))
			} else {
				pv = protoreflect.ValueOfInt64(v.UnixMicro())
			}
		default:
			return nil, fmt.Errorf("column %s: unsupported value %T", c.Name, v)
		}
		m.Set(fd, pv)
	}
	return proto.Marshal(m)
}

// epochDays returns the days since 1970-01-01 of t's UTC date.
func epochDays(t time.Time) int32 {
	t = t.UTC()
	return int32(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// columnMap returns a row of table t, its values in column order, as
// column name -> JSON-ready value.
func columnMap(t *warehouse.Table, vals []any) map[string]any {
	m := make(map[string]any, len(t.Columns))
	for i, c := range t.Columns {
		switch v := vals[i].(type) {
		case time.Time:
			if c.Type == warehouse.TypeDate {
				m[c.Name] = v.Format(time.DateOnly)
			} else {
				m[c.Name] = v.Format("2006-01-02T15:04:05.999999Z")
			}
		case []byte:
			m[c.Name] = base64.StdEncoding.EncodeToString(v)
		default:
			m[c.Name] = v
		}
	}
	return m
}
