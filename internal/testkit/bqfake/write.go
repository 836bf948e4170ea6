package bqfake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// writeServer implements the Storage Write API over the fake's tables.
type writeServer struct {
	storagepb.UnimplementedBigQueryWriteServer
	s *Server
}

// BigQuery's TIMESTAMP range in microseconds and DATE range in days.
const (
	minMicros = -62135596800000000 // 0001-01-01 00:00:00
	maxMicros = 253402300799999999 // 9999-12-31 23:59:59.999999
	minDays   = -719162            // 0001-01-01
	maxDays   = 2932896            // 9999-12-31
)

// tableKey turns "projects/p/datasets/d/tables/t[/streams/s]" into "p.d.t".
func tableKey(name string) (string, error) {
	parts := strings.Split(name, "/")
	if len(parts) < 6 || parts[0] != "projects" || parts[2] != "datasets" || parts[4] != "tables" {
		return "", status.Errorf(codes.InvalidArgument, "bqfake: bad stream or table name %q", name)
	}
	return parts[1] + "." + parts[3] + "." + parts[5], nil
}

func (w *writeServer) GetWriteStream(ctx context.Context, req *storagepb.GetWriteStreamRequest) (*storagepb.WriteStream, error) {
	key, err := tableKey(req.GetName())
	if err != nil {
		return nil, err
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.tables[key] == nil {
		return nil, status.Errorf(codes.NotFound, "Requested entity was not found. Entity: %s", req.GetName())
	}
	if !strings.HasSuffix(req.GetName(), "/streams/_default") {
		return nil, status.Errorf(codes.NotFound, "bqfake: only _default streams exist, not %s", req.GetName())
	}
	return &storagepb.WriteStream{Name: req.GetName(), Type: storagepb.WriteStream_COMMITTED, Location: "US"}, nil
}

// AppendRows serves one bidi stream. As in BigQuery, the first request names
// the stream and carries the writer schema; later ones may omit both.
func (w *writeServer) AppendRows(stream storagepb.BigQueryWrite_AppendRowsServer) error {
	var streamName string
	var msgDesc protoreflect.MessageDescriptor
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n := req.GetWriteStream(); n != "" {
			streamName = n
		}
		if streamName == "" {
			return status.Error(codes.InvalidArgument, "bqfake: first AppendRows request must name the write stream")
		}
		size := proto.Size(req)
		w.s.mu.Lock()
		w.s.stats.MaxRequestBytes = max(w.s.stats.MaxRequestBytes, size)
		w.s.mu.Unlock()
		if size >= MaxAppendBytes {
			return status.Errorf(codes.InvalidArgument, "bqfake: AppendRows request of %d bytes is too large (BigQuery's limit is 10 MB)", size)
		}
		pr := req.GetProtoRows()
		if pr == nil {
			return status.Error(codes.InvalidArgument, "bqfake: only proto_rows are supported")
		}
		if dp := pr.GetWriterSchema().GetProtoDescriptor(); dp != nil {
			md, err := messageDescriptor(dp)
			if err != nil {
				return status.Errorf(codes.InvalidArgument, "bqfake: invalid proto descriptor: %v", err)
			}
			msgDesc = md
		}
		if msgDesc == nil {
			return status.Error(codes.InvalidArgument, "bqfake: no writer schema on this connection")
		}
		resp, err := w.s.append(streamName, msgDesc, pr.GetRows().GetSerializedRows())
		if err != nil {
			return err
		}
		resp.WriteStream = streamName
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// messageDescriptor builds a message descriptor from the self-contained
// DescriptorProto a writer sends.
func messageDescriptor(dp *descriptorpb.DescriptorProto) (protoreflect.MessageDescriptor, error) {
	fdp := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("bqfake_writer_schema.proto"),
		Syntax:      proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{dp},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		return nil, err
	}
	return fd.Messages().Get(0), nil
}

// append checks and stores one request. A returned error ends the stream;
// request-level and row-level problems are answered in the response.
func (s *Server) append(streamName string, md protoreflect.MessageDescriptor, rows [][]byte) (*storagepb.AppendRowsResponse, error) {
	key, err := tableKey(streamName)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.AppendRequests++
	if s.failNext > 0 {
		s.failNext--
		s.stats.InjectedErrors++
		return nil, status.Errorf(s.failCode, "bqfake: injected error")
	}
	tb := s.tables[key]
	if tb == nil {
		return errorResponse(codes.NotFound, "Requested entity was not found. Entity: %s", streamName), nil
	}
	if err := checkDescriptor(tb, md); err != nil {
		return errorResponse(codes.InvalidArgument, "%v Entity: %s", err, streamName), nil
	}
	decoded := make([]map[string]any, 0, len(rows))
	var rowErrs []*storagepb.RowError
	for i, data := range rows {
		row, err := decodeRow(tb, md, data)
		if err == nil && s.Reject != nil {
			if msg := s.Reject(tb.meta.TableReference.TableId, row); msg != "" {
				err = errors.New(msg)
			}
		}
		if err != nil {
			rowErrs = append(rowErrs, &storagepb.RowError{
				Index:   int64(i),
				Code:    storagepb.RowError_FIELDS_ERROR,
				Message: err.Error(),
			})
			continue
		}
		decoded = append(decoded, row)
	}
	if len(rowErrs) > 0 {
		s.stats.RowErrors += len(rowErrs)
		resp := errorResponse(codes.InvalidArgument,
			"Errors found while processing rows. Please refer to the row_errors field for details. The list may not be complete because of the size limitations. Entity: %s", streamName)
		resp.RowErrors = rowErrs
		return resp, nil
	}
	tb.rows = append(tb.rows, decoded...)
	s.stats.RowsStored += len(decoded)
	s.version++
	return &storagepb.AppendRowsResponse{
		Response: &storagepb.AppendRowsResponse_AppendResult_{AppendResult: &storagepb.AppendRowsResponse_AppendResult{}},
	}, nil
}

func errorResponse(code codes.Code, format string, args ...any) *storagepb.AppendRowsResponse {
	return &storagepb.AppendRowsResponse{
		Response: &storagepb.AppendRowsResponse_Error{Error: &rpcstatus.Status{Code: int32(code), Message: fmt.Sprintf(format, args...)}},
	}
}

// checkDescriptor checks the writer schema against the table schema: every
// proto field must be a column of a compatible type, and every REQUIRED
// column must be in the proto.
func checkDescriptor(tb *table, md protoreflect.MessageDescriptor) error {
	fields := md.Fields()
	var extra []string
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		col := tb.column(string(fd.Name()))
		if col == nil {
			extra = append(extra, string(fd.Name()))
			continue
		}
		if !compatible(col.Type, fd.Kind()) {
			return fmt.Errorf("The proto field mismatched with BigQuery field at %s, the proto field type %s, BigQuery field type %s.", fd.Name(), fd.Kind(), col.Type)
		}
		if fd.Cardinality() == protoreflect.Repeated {
			return fmt.Errorf("bqfake: repeated field %s is not supported", fd.Name())
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("Input schema has more fields than BigQuery schema, extra fields: '%s'", strings.Join(extra, ","))
	}
	for _, col := range tb.meta.Schema.Fields {
		if col.Mode == "REQUIRED" && fields.ByName(protoreflect.Name(col.Name)) == nil {
			return fmt.Errorf("Missing required field %s in the proto schema.", col.Name)
		}
	}
	return nil
}

func compatible(bqType string, k protoreflect.Kind) bool {
	switch bqType {
	case "STRING":
		return k == protoreflect.StringKind
	case "INTEGER", "INT64":
		return k == protoreflect.Int64Kind || k == protoreflect.Int32Kind || k == protoreflect.Sint64Kind || k == protoreflect.Uint32Kind || k == protoreflect.Sfixed64Kind
	case "FLOAT", "FLOAT64":
		return k == protoreflect.DoubleKind || k == protoreflect.FloatKind
	case "BOOLEAN", "BOOL":
		return k == protoreflect.BoolKind
	case "BYTES":
		return k == protoreflect.BytesKind
	case "TIMESTAMP":
		return k == protoreflect.Int64Kind || k == protoreflect.StringKind
	case "DATE":
		return k == protoreflect.Int32Kind || k == protoreflect.Int64Kind || k == protoreflect.StringKind
	}
	return false
}

// decodeRow decodes one serialized row and converts it to column values.
func decodeRow(tb *table, md protoreflect.MessageDescriptor, data []byte) (map[string]any, error) {
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("Could not parse the serialized row: %v", err)
	}
	row := map[string]any{}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		col := tb.column(string(fd.Name()))
		var val any
		val, err = columnValue(col, fd, v)
		if err != nil {
			return false
		}
		row[col.Name] = val
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, col := range tb.meta.Schema.Fields {
		if _, ok := row[col.Name]; !ok && col.Mode == "REQUIRED" {
			return nil, fmt.Errorf("Field %s: required field is missing", col.Name)
		}
	}
	return row, nil
}

func columnValue(col *bq.TableFieldSchema, fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	switch col.Type {
	case "STRING":
		return v.String(), nil
	case "INTEGER", "INT64":
		if fd.Kind() == protoreflect.Uint32Kind {
			return int64(v.Uint()), nil
		}
		return v.Int(), nil
	case "FLOAT", "FLOAT64":
		return v.Float(), nil
	case "BOOLEAN", "BOOL":
		return v.Bool(), nil
	case "BYTES":
		return append([]byte(nil), v.Bytes()...), nil
	case "TIMESTAMP":
		if fd.Kind() == protoreflect.StringKind {
			t, err := time.Parse(time.RFC3339Nano, v.String())
			if err != nil {
				return nil, fmt.Errorf("Field %s: invalid timestamp %q", col.Name, v.String())
			}
			return t.UTC(), nil
		}
		us := v.Int()
		if us < minMicros || us > maxMicros {
			return nil, fmt.Errorf("Field %s: Timestamp field value is out of range: %d", col.Name, us)
		}
		return time.UnixMicro(us).UTC(), nil
	case "DATE":
		if fd.Kind() == protoreflect.StringKind {
			d, err := civil.ParseDate(v.String())
			if err != nil {
				return nil, fmt.Errorf("Field %s: invalid date %q", col.Name, v.String())
			}
			return d, nil
		}
		days := v.Int()
		if days < minDays || days > maxDays {
			return nil, fmt.Errorf("Field %s: Date field value is out of range: %d", col.Name, days)
		}
		return civil.DateOf(time.Unix(days*86400, 0).UTC()), nil
	}
	return nil, fmt.Errorf("Field %s: unsupported type %s", col.Name, col.Type)
}
