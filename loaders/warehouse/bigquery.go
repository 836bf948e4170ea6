package warehouse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"cloud.google.com/go/civil"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Environment variables that point the BigQuery backend at local servers
// (test fakes or emulators); both are used without authentication.
const (
	// EnvEmulatorHost is host:port of a server of the BigQuery REST API
	// (datasets, tables, jobs).
	EnvEmulatorHost = "BIGQUERY_EMULATOR_HOST"
	// EnvStorageEmulatorHost is host:port of a plaintext gRPC server of the
	// BigQuery Storage Write API.
	EnvStorageEmulatorHost = "BIGQUERY_STORAGE_EMULATOR_HOST"
)

// BigQueryOptions configures the BigQuery backend. Zero values take the
// environment (EnvEmulatorHost, EnvStorageEmulatorHost) and defaults.
type BigQueryOptions struct {
	// REST are client options of the BigQuery API client (setup, queries,
	// load jobs).
	REST []option.ClientOption
	// Storage are client options of the Storage Write API client.
	Storage []option.ClientOption
	// MaxAttempts bounds the attempts of one append on transient errors
	// (default 6); backoff starts at 100ms and doubles up to 5s.
	MaxAttempts int
	// BatchRows caps the rows of one AppendRows request (default 500).
	BatchRows int
}

func (o BigQueryOptions) withDefaults() BigQueryOptions {
	if o.REST == nil {
		if host := os.Getenv(EnvEmulatorHost); host != "" {
			o.REST = []option.ClientOption{
				option.WithEndpoint("http://" + host + "/bigquery/v2/"),
				option.WithoutAuthentication(),
			}
		}
	}
	if o.Storage == nil {
		if host := os.Getenv(EnvStorageEmulatorHost); host != "" {
			o.Storage = []option.ClientOption{
				option.WithEndpoint(host),
				option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			}
		}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 500
	}
	return o
}

// BigQuery writes rows into a BigQuery dataset through the Storage Write
// API's default stream of each table. Delivery is at-least-once: an append
// retried after a transient error, or a bundle retried by the runner, can
// store a row twice; analysts dedupe on event_id / alert_id.
type BigQuery struct {
	Project, Dataset string

	opts    BigQueryOptions
	client  *managedwriter.Client
	mu      sync.Mutex
	streams map[string]*tableStream
}

var _ rejectingWriter = (*BigQuery)(nil)

type tableStream struct {
	table  *Table
	msg    protoreflect.MessageDescriptor
	stream *managedwriter.ManagedStream
}

// OpenBigQuery opens the Storage Write API client for project.dataset. The
// tables must exist (Setup).
func OpenBigQuery(ctx context.Context, project, dataset string, o BigQueryOptions) (*BigQuery, error) {
	o = o.withDefaults()
	c, err := managedwriter.NewClient(ctx, project, o.Storage...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: managedwriter.NewClient: %w", err)
	}
	return &BigQuery{Project: project, Dataset: dataset, opts: o, client: c, streams: map[string]*tableStream{}}, nil
}

// Close closes the streams and the client.
func (b *BigQuery) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.streams {
		s.stream.Close()
	}
	b.streams = map[string]*tableStream{}
	if err := b.client.Close(); err != nil {
		return fmt.Errorf("warehouse: close bigquery client: %w", err)
	}
	return nil
}

func (b *BigQuery) uri() string { return bqPrefix + b.Project + "." + b.Dataset }

// Write appends rows to table. Rows BigQuery rejects are written to
// dead_letters with the error; Write fails only if that fails too, or on an
// error that is not about single rows.
func (b *BigQuery) Write(ctx context.Context, table string, rows any) error {
	_, err := b.writeRejects(ctx, table, rows)
	return err
}

func (b *BigQuery) writeRejects(ctx context.Context, table string, rows any) ([]DeadLetterRow, error) {
	t, err := TableByName(table)
	if err != nil {
		return nil, err
	}
	vals, err := t.rowValues(rows)
	if err != nil {
		return nil, err
	}
	rejected, err := b.append(ctx, t, vals)
	if err != nil {
		return nil, fmt.Errorf("warehouse: write %s: %w", table, err)
	}
	if len(rejected) == 0 {
		return nil, nil
	}
	slog.WarnContext(ctx, "warehouse: rows rejected", "table", table, "rows", len(rejected))
	if table == DeadLetters {
		return rejected, fmt.Errorf("warehouse: write %s: %d dead letters rejected, first: %s", table, len(rejected), rejected[0].Error)
	}
	if err := b.Write(ctx, DeadLetters, rejected); err != nil {
		return rejected, err
	}
	return rejected, nil
}

func (b *BigQuery) stream(ctx context.Context, t *Table) (*tableStream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.streams[t.Name]; ok {
		return s, nil
	}
	md, dp, err := protoDescriptor(t)
	if err != nil {
		return nil, err
	}
	ms, err := b.client.NewManagedStream(ctx,
		managedwriter.WithDestinationTable(managedwriter.TableParentFromParts(b.Project, b.Dataset, t.Name)),
		managedwriter.WithType(managedwriter.DefaultStream),
		managedwriter.WithSchemaDescriptor(dp),
	)
	if err != nil {
		return nil, fmt.Errorf("open default stream: %w", err)
	}
	s := &tableStream{table: t, msg: md, stream: ms}
	b.streams[t.Name] = s
	return s, nil
}

// protoDescriptor builds the message descriptor of t's rows from its schema,
// as BigQuery expects it: proto2, self-contained (normalized).
func protoDescriptor(t *Table) (protoreflect.MessageDescriptor, *descriptorpb.DescriptorProto, error) {
	ts, err := adapt.BQSchemaToStorageTableSchema(t.Schema)
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

// append sends vals in batches and returns the rows BigQuery rejected as
// dead letters. A batch with row errors is stored by BigQuery not at all, so
// it is resent without the rejected rows.
func (b *BigQuery) append(ctx context.Context, t *Table, vals []reflect.Value) ([]DeadLetterRow, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	s, err := b.stream(ctx, t)
	if err != nil {
		return nil, err
	}
	var rejected []DeadLetterRow
	type encoded struct {
		row  reflect.Value
		data []byte
	}
	pending := make([]encoded, 0, len(vals))
	for _, v := range vals {
		data, err := encodeProto(s.msg, t, v)
		if err != nil {
			rejected = append(rejected, b.deadLetter(t, v, err.Error()))
			continue
		}
		pending = append(pending, encoded{v, data})
	}
	for start := 0; start < len(pending); {
		end := min(start+b.opts.BatchRows, len(pending))
		batch := pending[start:end]
		for len(batch) > 0 {
			data := make([][]byte, len(batch))
			for i, e := range batch {
				data[i] = e.data
			}
			rowErrs, err := b.appendWithRetry(ctx, s, data)
			if err != nil {
				return rejected, err
			}
			if len(rowErrs) == 0 {
				break
			}
			bad := map[int64]string{}
			for _, re := range rowErrs {
				bad[re.GetIndex()] = re.GetCode().String() + ": " + re.GetMessage()
			}
			keep := batch[:0:0]
			for i, e := range batch {
				if msg, ok := bad[int64(i)]; ok {
					rejected = append(rejected, b.deadLetter(t, e.row, msg))
				} else {
					keep = append(keep, e)
				}
			}
			if len(keep) == len(batch) {
				return rejected, fmt.Errorf("row errors with indexes outside the batch: %v", rowErrs)
			}
			batch = keep
		}
		start = end
	}
	return rejected, nil
}

// appendWithRetry appends one batch, retrying transient errors with
// exponential backoff. It returns the row errors of a rejected batch.
func (b *BigQuery) appendWithRetry(ctx context.Context, s *tableStream, data [][]byte) ([]*storagepb.RowError, error) {
	bo := gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
	for attempt := 1; ; attempt++ {
		res, err := s.stream.AppendRows(ctx, data)
		var resp *storagepb.AppendRowsResponse
		if err == nil {
			resp, err = res.FullResponse(ctx)
		}
		if rowErrs := resp.GetRowErrors(); len(rowErrs) > 0 {
			return rowErrs, nil
		}
		if err == nil {
			return nil, nil
		}
		if ctx.Err() != nil || !transient(err) || attempt >= b.opts.MaxAttempts {
			return nil, fmt.Errorf("append rows (attempt %d): %w", attempt, err)
		}
		pause := bo.Pause()
		slog.DebugContext(ctx, "warehouse: retrying append", "table", s.table.Name, "attempt", attempt, "pause", pause, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// transient reports whether an append error is worth retrying.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Internal, codes.Aborted, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled:
		return true
	}
	return strings.Contains(err.Error(), "EOF")
}

// encodeProto encodes row v of table t as a message of md.
func encodeProto(md protoreflect.MessageDescriptor, t *Table, v reflect.Value) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	for _, f := range t.Schema {
		fd := md.Fields().ByName(protoreflect.Name(f.Name))
		if fd == nil {
			return nil, fmt.Errorf("column %s missing from descriptor", f.Name)
		}
		fv := v.Field(t.fields[f.Name])
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		var pv protoreflect.Value
		switch f.Type {
		case bigquery.StringFieldType:
			pv = protoreflect.ValueOfString(fv.String())
		case bigquery.IntegerFieldType:
			pv = protoreflect.ValueOfInt64(fv.Int())
		case bigquery.FloatFieldType:
			pv = protoreflect.ValueOfFloat64(fv.Float())
		case bigquery.BooleanFieldType:
			pv = protoreflect.ValueOfBool(fv.Bool())
		case bigquery.BytesFieldType:
			if fv.IsNil() {
				continue
			}
			pv = protoreflect.ValueOfBytes(fv.Bytes())
		case bigquery.TimestampFieldType:
			pv = protoreflect.ValueOfInt64(fv.Interface().(time.Time).UnixMicro())
		case bigquery.DateFieldType:
			pv = protoreflect.ValueOfInt32(epochDays(fv.Interface().(time.Time)))
		default:
			return nil, fmt.Errorf("column %s: unsupported type %s", f.Name, f.Type)
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

// columnMap returns row v as column name -> JSON-ready value.
func columnMap(t *Table, v reflect.Value) map[string]any {
	m := make(map[string]any, len(t.Schema))
	for _, f := range t.Schema {
		fv := v.Field(t.fields[f.Name])
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				m[f.Name] = nil
				continue
			}
			fv = fv.Elem()
		}
		switch f.Type {
		case bigquery.TimestampFieldType:
			m[f.Name] = fv.Interface().(time.Time).UTC().Format("2006-01-02T15:04:05.999999Z")
		case bigquery.DateFieldType:
			m[f.Name] = fv.Interface().(time.Time).UTC().Format(time.DateOnly)
		case bigquery.BytesFieldType:
			m[f.Name] = base64.StdEncoding.EncodeToString(fv.Bytes())
		default:
			m[f.Name] = fv.Interface()
		}
	}
	return m
}

func (b *BigQuery) deadLetter(t *Table, v reflect.Value, msg string) DeadLetterRow {
	payload, _ := json.Marshal(columnMap(t, v))
	attrs, _ := json.Marshal(map[string]string{"table": t.Name, "warehouse": b.uri()})
	return DeadLetterRow{
		Reason:         "warehouse_rejected",
		Error:          msg,
		Payload:        payload,
		Attributes:     string(attrs),
		Stage:          StageWarehouse,
		Origin:         b.uri() + "/" + t.Name,
		DeadLetteredAt: time.Now().UTC(),
	}
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

func isConflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

// setupBigQuery creates the dataset and tables, and patches existing tables
// with new columns and changed descriptions.
func setupBigQuery(ctx context.Context, project, dataset, location string, dryRun bool, opts ...option.ClientOption) ([]string, error) {
	o := BigQueryOptions{REST: opts}
	if len(opts) == 0 {
		o.REST = nil
	}
	o = o.withDefaults()
	client, err := bigquery.NewClient(ctx, project, o.REST...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: bigquery.NewClient: %w", err)
	}
	defer client.Close()
	var lines []string
	ds := client.Dataset(dataset)
	dsName := project + "." + dataset
	md, err := ds.Metadata(ctx)
	switch {
	case isNotFound(err):
		if dryRun {
			lines = append(lines, fmt.Sprintf("dataset %s: would create in %s", dsName, location))
			for _, t := range Tables {
				lines = append(lines, fmt.Sprintf("table %s.%s: would create", dsName, t.Name))
			}
			return lines, nil
		}
		err := ds.Create(ctx, &bigquery.DatasetMetadata{
			Location:    location,
			Description: "Inventory change events: adjustments, stock levels, alerts, dead letters and nightly summaries.",
		})
		if err != nil && !isConflict(err) {
			return lines, fmt.Errorf("warehouse: setup: create dataset %s: %w", dsName, err)
		}
		lines = append(lines, fmt.Sprintf("dataset %s: created in %s", dsName, location))
	case err != nil:
		return lines, fmt.Errorf("warehouse: setup: get dataset %s: %w", dsName, err)
	case location != "" && !strings.EqualFold(md.Location, location):
		lines = append(lines, fmt.Sprintf("dataset %s: unchanged (it is in %s, not %s; a dataset cannot move)", dsName, md.Location, location))
	default:
		lines = append(lines, fmt.Sprintf("dataset %s: unchanged", dsName))
	}
	for _, t := range Tables {
		line, err := setupTable(ctx, ds.Table(t.Name), t, dsName, dryRun)
		if err != nil {
			return lines, fmt.Errorf("warehouse: setup: table %s.%s: %w", dsName, t.Name, err)
		}
		lines = append(lines, line)
	}
	return lines, nil
}

func tableMetadata(t *Table) *bigquery.TableMetadata {
	return &bigquery.TableMetadata{
		Description: t.Description,
		Schema:      t.Schema,
		TimePartitioning: &bigquery.TimePartitioning{
			Type:  bigquery.DayPartitioningType,
			Field: t.PartitionColumn,
		},
		Clustering: &bigquery.Clustering{Fields: t.Clustering},
	}
}

func setupTable(ctx context.Context, tbl *bigquery.Table, t *Table, dsName string, dryRun bool) (string, error) {
	name := dsName + "." + t.Name
	md, err := tbl.Metadata(ctx)
	if isNotFound(err) {
		if dryRun {
			return fmt.Sprintf("table %s: would create", name), nil
		}
		if err := tbl.Create(ctx, tableMetadata(t)); err != nil && !isConflict(err) {
			return "", fmt.Errorf("create: %w", err)
		}
		return fmt.Sprintf("table %s: created (partitioned by DATE(%s), clustered by %s)", name, t.PartitionColumn, strings.Join(t.Clustering, ", ")), nil
	}
	if err != nil {
		return "", fmt.Errorf("get: %w", err)
	}
	existing := map[string]*bigquery.FieldSchema{}
	for _, f := range md.Schema {
		existing[f.Name] = f
	}
	schema := make(bigquery.Schema, 0, len(md.Schema)+len(t.Schema))
	var added, described, notes []string
	for _, f := range md.Schema {
		c := *f
		for _, want := range t.Schema {
			if want.Name != f.Name {
				continue
			}
			if want.Type != f.Type {
				notes = append(notes, fmt.Sprintf("column %s is %s, want %s", f.Name, f.Type, want.Type))
			}
			if want.Description != f.Description {
				c.Description = want.Description
				described = append(described, f.Name)
			}
		}
		schema = append(schema, &c)
	}
	for _, want := range t.Schema {
		if _, ok := existing[want.Name]; !ok {
			c := *want
			c.Required = false // BigQuery adds columns as NULLABLE only
			schema = append(schema, &c)
			added = append(added, want.Name)
		}
	}
	if tp := md.TimePartitioning; tp == nil || tp.Field != t.PartitionColumn {
		notes = append(notes, fmt.Sprintf("not partitioned by %s (recreate the table to change it)", t.PartitionColumn))
	}
	update := bigquery.TableMetadataToUpdate{}
	var did []string
	if len(added) > 0 || len(described) > 0 {
		update.Schema = schema
		if len(added) > 0 {
			did = append(did, "added columns "+strings.Join(added, ", "))
		}
		if len(described) > 0 {
			did = append(did, "described columns "+strings.Join(described, ", "))
		}
	}
	if md.Description != t.Description {
		update.Description = t.Description
		did = append(did, "updated description")
	}
	if (md.Clustering == nil || len(md.Clustering.Fields) == 0) && len(t.Clustering) > 0 {
		update.Clustering = &bigquery.Clustering{Fields: t.Clustering}
		did = append(did, "clustered by "+strings.Join(t.Clustering, ", "))
	}
	suffix := ""
	if len(notes) > 0 {
		suffix = "; warning: " + strings.Join(notes, "; ")
	}
	if len(did) == 0 {
		return fmt.Sprintf("table %s: unchanged%s", name, suffix), nil
	}
	if dryRun {
		return fmt.Sprintf("table %s: would update: %s%s", name, strings.Join(did, "; "), suffix), nil
	}
	if _, err := tbl.Update(ctx, update, md.ETag); err != nil {
		return "", fmt.Errorf("update: %w", err)
	}
	return fmt.Sprintf("table %s: updated: %s%s", name, strings.Join(did, "; "), suffix), nil
}

// queryBigQuery runs GoogleSQL with project.dataset as the default dataset,
// so queries name tables unqualified like they do locally.
func queryBigQuery(ctx context.Context, project, dataset, sql string, o BigQueryOptions) (*result, error) {
	o = o.withDefaults()
	client, err := bigquery.NewClient(ctx, project, o.REST...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: bigquery.NewClient: %w", err)
	}
	defer client.Close()
	q := client.Query(sql)
	q.DefaultProjectID = project
	q.DefaultDatasetID = dataset
	it, err := q.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("warehouse: query bq://%s.%s: %w", project, dataset, err)
	}
	res := &result{}
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("warehouse: query bq://%s.%s: read: %w", project, dataset, err)
		}
		if res.columns == nil {
			for _, f := range it.Schema {
				res.columns = append(res.columns, f.Name)
			}
		}
		vals := make([]any, len(row))
		for i, v := range row {
			switch x := v.(type) {
			case *big.Rat:
				f, _ := x.Float64()
				vals[i] = f
			case time.Time:
				vals[i] = x.UTC()
			default:
				vals[i] = x
			}
		}
		res.rows = append(res.rows, vals)
	}
	if res.columns == nil {
		for _, f := range it.Schema {
			res.columns = append(res.columns, f.Name)
		}
	}
	return res, nil
}

// replaceDateBigQuery replaces one partition atomically with a load job
// (WRITE_TRUNCATE on the partition decorator table$YYYYMMDD).
func replaceDateBigQuery(ctx context.Context, project, dataset string, t *Table, date civil.Date, vals []reflect.Value, o BigQueryOptions) error {
	o = o.withDefaults()
	wrap := func(err error) error {
		return fmt.Errorf("warehouse: replace bq://%s.%s.%s %s: %w", project, dataset, t.Name, date, err)
	}
	client, err := bigquery.NewClient(ctx, project, o.REST...)
	if err != nil {
		return wrap(err)
	}
	defer client.Close()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, v := range vals {
		if err := enc.Encode(columnMap(t, v)); err != nil {
			return wrap(err)
		}
	}
	src := bigquery.NewReaderSource(&buf)
	src.SourceFormat = bigquery.JSON
	src.Schema = t.Schema
	decorator := fmt.Sprintf("%s$%04d%02d%02d", t.Name, date.Year, int(date.Month), date.Day)
	loader := client.Dataset(dataset).Table(decorator).LoaderFrom(src)
	loader.WriteDisposition = bigquery.WriteTruncate
	loader.CreateDisposition = bigquery.CreateNever
	job, err := loader.Run(ctx)
	if err != nil {
		return wrap(err)
	}
	st, err := job.Wait(ctx)
	if err != nil {
		return wrap(err)
	}
	if err := st.Err(); err != nil {
		return wrap(err)
	}
	return nil
}
