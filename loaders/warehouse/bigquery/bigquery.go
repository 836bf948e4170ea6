// Package bigquery is the BigQuery warehouse backend, for URIs
// "bq://PROJECT.DATASET": rows go through the Storage Write API's default
// stream of each table, setup, queries and partition replacement through the
// BigQuery REST API. It registers itself for the scheme "bq"; link it with
//
//	import _ "github.com/inventory-events/inventory/loaders/warehouse/bigquery"
//
// It is pure Go.
package bigquery

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
	"strings"
	"sync"
	"time"

	bq "cloud.google.com/go/bigquery"
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
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/inventory-events/inventory/loaders/warehouse"
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

// Scheme is the URI scheme of BigQuery warehouses: "bq://PROJECT.DATASET".
const Scheme = "bq"

func init() { warehouse.Register(Scheme, backend{}) }

// parseURI splits "bq://PROJECT.DATASET".
func parseURI(uri string) (project, dataset string, err error) {
	rest, ok := strings.CutPrefix(uri, Scheme+"://")
	i := strings.LastIndex(rest, ".")
	if !ok || i <= 0 || i == len(rest)-1 {
		return "", "", fmt.Errorf("warehouse: %q: want bq://PROJECT.DATASET", uri)
	}
	return rest[:i], rest[i+1:], nil
}

// backend is the warehouse.Backend of bq:// URIs.
type backend struct{}

func (backend) Open(ctx context.Context, uri string) (warehouse.Writer, error) {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	return Open(ctx, project, dataset, Options{})
}

func (backend) Setup(ctx context.Context, uri, location string, dryRun bool) ([]string, error) {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	return setup(ctx, project, dataset, location, dryRun, Options{})
}

func (backend) Query(ctx context.Context, uri, sql string) (*warehouse.Result, error) {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	return query(ctx, project, dataset, sql, Options{})
}

func (backend) ReplaceDate(ctx context.Context, uri string, date civil.Date, rows warehouse.TableRows) error {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return err
	}
	return replaceDate(ctx, project, dataset, date, rows, Options{})
}

// Options configures the BigQuery backend. Zero values take the
// environment (EnvEmulatorHost, EnvStorageEmulatorHost) and defaults.
type Options struct {
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
	// BatchBytes caps the encoded rows of one AppendRows request (default
	// DefaultBatchBytes). BigQuery refuses requests of 10 MB or more; a
	// row larger than the cap on its own is rejected to dead_letters.
	BatchBytes int
}

// DefaultBatchBytes is the default Options.BatchBytes: below BigQuery's
// 10 MB per AppendRows request, with room for the request's stream name and
// writer schema.
const DefaultBatchBytes = 9_000_000

func (o Options) withDefaults() Options {
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
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	return o
}

// Writer writes rows into a BigQuery dataset through the Storage Write
// API's default stream of each table. Delivery is at-least-once: an append
// retried after a transient error, or a bundle retried by the runner, can
// store a row twice; analysts dedupe on event_id / alert_id.
type Writer struct {
	Project, Dataset string

	opts    Options
	client  *managedwriter.Client
	mu      sync.Mutex
	streams map[string]*tableStream
}

var _ warehouse.Writer = (*Writer)(nil)

type tableStream struct {
	table  *warehouse.Table
	msg    protoreflect.MessageDescriptor
	stream *managedwriter.ManagedStream
}

// Open opens the Storage Write API client for project.dataset. The tables
// must exist (warehouse.Setup).
func Open(ctx context.Context, project, dataset string, o Options) (*Writer, error) {
	o = o.withDefaults()
	c, err := managedwriter.NewClient(ctx, project, o.Storage...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: managedwriter.NewClient: %w", err)
	}
	return &Writer{Project: project, Dataset: dataset, opts: o, client: c, streams: map[string]*tableStream{}}, nil
}

// Close closes the streams and the client.
func (b *Writer) Close() error {
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

func (b *Writer) uri() string { return Scheme + "://" + b.Project + "." + b.Dataset }

// Write appends rows to their table. Rows BigQuery rejects are written to
// dead_letters with the error and returned; Write fails only if that fails
// too, or on an error that is not about single rows.
func (b *Writer) Write(ctx context.Context, rows warehouse.TableRows) ([]warehouse.DeadLetterRow, error) {
	if rows.Len() == 0 {
		return nil, nil
	}
	t := rows.Table()
	rejected, err := b.append(ctx, rows)
	if err != nil {
		if te := b.tableError(t, err); te != nil {
			return nil, te
		}
		return nil, fmt.Errorf("warehouse: write %s: %w", t.Name, err)
	}
	if len(rejected) == 0 {
		return nil, nil
	}
	slog.WarnContext(ctx, "warehouse: rows rejected", "table", t.Name, "rows", len(rejected))
	if t.Name == warehouse.DeadLetters {
		return rejected, fmt.Errorf("warehouse: write %s: %d dead letters rejected, first: %s", t.Name, len(rejected), rejected[0].Error)
	}
	if _, err := b.Write(ctx, warehouse.Rows(rejected)); err != nil {
		return rejected, err
	}
	return rejected, nil
}

func (b *Writer) stream(ctx context.Context, t *warehouse.Table) (*tableStream, error) {
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

// append sends rows in requests of at most BatchRows rows and BatchBytes
// bytes and returns the rows BigQuery rejected as dead letters. A request
// with row errors is stored by BigQuery not at all, so it is resent
// without the rejected rows.
func (b *Writer) append(ctx context.Context, rows warehouse.TableRows) ([]warehouse.DeadLetterRow, error) {
	t := rows.Table()
	s, err := b.stream(ctx, t)
	if err != nil {
		return nil, err
	}
	var rejected []warehouse.DeadLetterRow
	reject := func(i int, msg string) {
		rejected = append(rejected, b.deadLetter(t, rows.Values(i), msg))
	}
	var batch []encoded
	size := 0
	flush := func() error {
		for len(batch) > 0 {
			data := make([][]byte, len(batch))
			for i, e := range batch {
				data[i] = e.data
			}
			rowErrs, err := b.appendWithRetry(ctx, s, data)
			if err != nil {
				return err
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
					reject(e.index, msg)
				} else {
					keep = append(keep, e)
				}
			}
			if len(keep) == len(batch) {
				return fmt.Errorf("row errors with indexes outside the batch: %v", rowErrs)
			}
			batch = keep
		}
		batch, size = nil, 0
		return nil
	}
	for i := range rows.Len() {
		data, err := encodeProto(s.msg, t, rows.Values(i))
		if err != nil {
			reject(i, err.Error())
			continue
		}
		// In the request a row is a length-delimited field of ProtoRows.
		n := protowire.SizeTag(1) + protowire.SizeBytes(len(data))
		if n > b.opts.BatchBytes {
			reject(i, fmt.Sprintf("row of %d bytes exceeds the %d-byte cap of one AppendRows request", len(data), b.opts.BatchBytes))
			continue
		}
		if len(batch) == b.opts.BatchRows || size+n > b.opts.BatchBytes {
			if err := flush(); err != nil {
				return rejected, err
			}
		}
		batch = append(batch, encoded{i, data})
		size += n
	}
	if err := flush(); err != nil {
		return rejected, err
	}
	return rejected, nil
}

// appendWithRetry appends one batch, retrying transient errors with
// exponential backoff. It returns the row errors of a rejected batch.
func (b *Writer) appendWithRetry(ctx context.Context, s *tableStream, data [][]byte) ([]*storagepb.RowError, error) {
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

// tableError returns the *warehouse.TableError of an append error that
// is about the table rather than a row or the moment (see transient), with
// the fix; nil for any other error.
func (b *Writer) tableError(t *warehouse.Table, err error) error {
	uri := b.uri()
	te := &warehouse.TableError{Table: uri + "." + t.Name, Err: err}
	switch status.Code(err) {
	case codes.PermissionDenied, codes.Unauthenticated:
		te.Problem = "permission denied"
		te.Fix = fmt.Sprintf("grant the job's service account roles/bigquery.dataEditor on dataset %s (deploy/iam.sh)", b.Dataset)
	case codes.NotFound:
		te.Problem = "no such table"
		te.Fix = fmt.Sprintf("create the tables: inventory setup --warehouse %s", uri)
	case codes.InvalidArgument, codes.FailedPrecondition:
		te.Problem = "the table's schema differs from the job's"
		te.Fix = fmt.Sprintf("bring the tables to this release before it writes: inventory setup --warehouse %s (adds the new columns)", uri)
	default:
		return nil
	}
	return te
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

func (b *Writer) deadLetter(t *warehouse.Table, vals []any, msg string) warehouse.DeadLetterRow {
	payload, _ := json.Marshal(columnMap(t, vals))
	attrs, _ := json.Marshal(map[string]string{"table": t.Name, "warehouse": b.uri()})
	r := warehouse.DeadLetterRow{
		Reason:         "warehouse_rejected",
		Error:          msg,
		Payload:        payload,
		Attributes:     string(attrs),
		Stage:          warehouse.StageWarehouse,
		Origin:         b.uri() + "/" + t.Name,
		DeadLetteredAt: time.Now().UTC(),
	}
	// Bounded here too, not only when stored: callers publish the rejected
	// rows to the dead-letter topic.
	warehouse.BoundPayload(&r)
	return r
}

// schema returns t's columns as a BigQuery schema.
func schema(t *warehouse.Table) bq.Schema {
	s := make(bq.Schema, len(t.Columns))
	for i, c := range t.Columns {
		s[i] = &bq.FieldSchema{Name: c.Name, Type: bq.FieldType(c.Type), Description: c.Description, Required: c.Required}
	}
	return s
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

func isConflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

// setup creates the dataset and tables, and patches existing tables
// with new columns and changed descriptions.
func setup(ctx context.Context, project, dataset, location string, dryRun bool, o Options) ([]string, error) {
	o = o.withDefaults()
	client, err := bq.NewClient(ctx, project, o.REST...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: bq.NewClient: %w", err)
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
			for _, t := range warehouse.Tables {
				lines = append(lines, fmt.Sprintf("table %s.%s: would create", dsName, t.Name))
			}
			return lines, nil
		}
		err := ds.Create(ctx, &bq.DatasetMetadata{
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
	for _, t := range warehouse.Tables {
		line, err := setupTable(ctx, ds.Table(t.Name), t, dsName, dryRun)
		if err != nil {
			return lines, fmt.Errorf("warehouse: setup: table %s.%s: %w", dsName, t.Name, err)
		}
		lines = append(lines, line)
	}
	return lines, nil
}

func tableMetadata(t *warehouse.Table) *bq.TableMetadata {
	return &bq.TableMetadata{
		Description: t.Description,
		Schema:      schema(t),
		TimePartitioning: &bq.TimePartitioning{
			Type:  bq.DayPartitioningType,
			Field: t.PartitionColumn,
		},
		Clustering: &bq.Clustering{Fields: t.Clustering},
	}
}

func setupTable(ctx context.Context, tbl *bq.Table, t *warehouse.Table, dsName string, dryRun bool) (string, error) {
	wantSchema := schema(t)
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
	existing := map[string]*bq.FieldSchema{}
	for _, f := range md.Schema {
		existing[f.Name] = f
	}
	merged := make(bq.Schema, 0, len(md.Schema)+len(wantSchema))
	var added, described, notes []string
	for _, f := range md.Schema {
		c := *f
		for _, want := range wantSchema {
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
		merged = append(merged, &c)
	}
	for _, want := range wantSchema {
		if _, ok := existing[want.Name]; !ok {
			c := *want
			c.Required = false // BigQuery adds columns as NULLABLE only
			merged = append(merged, &c)
			added = append(added, want.Name)
		}
	}
	if tp := md.TimePartitioning; tp == nil || tp.Field != t.PartitionColumn {
		notes = append(notes, fmt.Sprintf("not partitioned by %s (recreate the table to change it)", t.PartitionColumn))
	}
	update := bq.TableMetadataToUpdate{}
	var did []string
	if len(added) > 0 || len(described) > 0 {
		update.Schema = merged
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
		update.Clustering = &bq.Clustering{Fields: t.Clustering}
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

// query runs GoogleSQL with project.dataset as the default dataset,
// so queries name tables unqualified like they do locally.
func query(ctx context.Context, project, dataset, sql string, o Options) (*warehouse.Result, error) {
	o = o.withDefaults()
	client, err := bq.NewClient(ctx, project, o.REST...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: bq.NewClient: %w", err)
	}
	defer client.Close()
	q := client.Query(sql)
	q.DefaultProjectID = project
	q.DefaultDatasetID = dataset
	it, err := q.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("warehouse: query bq://%s.%s: %w", project, dataset, err)
	}
	res := &warehouse.Result{}
	for {
		var row []bq.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("warehouse: query bq://%s.%s: read: %w", project, dataset, err)
		}
		if res.Columns == nil {
			for _, f := range it.Schema {
				res.Columns = append(res.Columns, f.Name)
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
		res.Rows = append(res.Rows, vals)
	}
	if res.Columns == nil {
		for _, f := range it.Schema {
			res.Columns = append(res.Columns, f.Name)
		}
	}
	return res, nil
}

// replaceDate replaces one partition atomically with a load job
// (WRITE_TRUNCATE on the partition decorator table$YYYYMMDD).
func replaceDate(ctx context.Context, project, dataset string, date civil.Date, rows warehouse.TableRows, o Options) error {
	o = o.withDefaults()
	t := rows.Table()
	wrap := func(err error) error {
		return fmt.Errorf("warehouse: replace bq://%s.%s.%s %s: %w", project, dataset, t.Name, date, err)
	}
	client, err := bq.NewClient(ctx, project, o.REST...)
	if err != nil {
		return wrap(err)
	}
	defer client.Close()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range rows.Len() {
		if err := enc.Encode(columnMap(t, rows.Values(i))); err != nil {
			return wrap(err)
		}
	}
	src := bq.NewReaderSource(&buf)
	src.SourceFormat = bq.JSON
	src.Schema = schema(t)
	decorator := fmt.Sprintf("%s$%04d%02d%02d", t.Name, date.Year, int(date.Month), date.Day)
	loader := client.Dataset(dataset).Table(decorator).LoaderFrom(src)
	loader.WriteDisposition = bq.WriteTruncate
	loader.CreateDisposition = bq.CreateNever
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
