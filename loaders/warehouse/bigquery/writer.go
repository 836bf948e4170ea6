package bigquery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/bigquery/storage/managedwriter"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// writer writes rows into a BigQuery dataset through the Storage Write
// API's default stream of each table. Delivery is at-least-once: an append
// retried after a transient error, or a bundle retried by the runner, can
// store a row twice; analysts dedupe on event_id / alert_id.
type writer struct {
	Project, Dataset string

	opts    Options
	client  *managedwriter.Client
	mu      sync.Mutex
	streams map[string]*tableStream
}

var _ warehouse.Writer = (*writer)(nil)

type tableStream struct {
	table  *warehouse.Table
	msg    protoreflect.MessageDescriptor
	stream *managedwriter.ManagedStream
}

// Open opens the Storage Write API client for project.dataset. The tables
// must exist (warehouse.Setup).
func Open(ctx context.Context, project, dataset string, o Options) (*writer, error) {
	o = o.withDefaults()
	c, err := managedwriter.NewClient(ctx, project, o.Storage...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: managedwriter.NewClient: %w", err)
	}
	return &writer{Project: project, Dataset: dataset, opts: o, client: c, streams: map[string]*tableStream{}}, nil
}

// Close closes the streams and the client.
func (b *writer) Close() error {
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

func (b *writer) uri() string { return scheme + "://" + b.Project + "." + b.Dataset }

// Write appends rows to their table. Rows BigQuery rejects are written to
// dead_letters with the error and returned; Write fails only if that fails
// too, or on an error that is not about single rows.
func (b *writer) Write(ctx context.Context, rows warehouse.TableRows) ([]warehouse.DeadLetterRow, error) {
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

func (b *writer) stream(ctx context.Context, t *warehouse.Table) (*tableStream, error) {
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

// append sends rows in requests of at most BatchRows rows and BatchBytes
// bytes and returns the rows BigQuery rejected as dead letters. A request
// with row errors is stored by BigQuery not at all, so it is resent
// without the rejected rows.
func (b *writer) append(ctx context.Context, rows warehouse.TableRows) ([]warehouse.DeadLetterRow, error) {
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
func (b *writer) appendWithRetry(ctx context.Context, s *tableStream, data [][]byte) ([]*storagepb.RowError, error) {
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
func (b *writer) tableError(t *warehouse.Table, err error) error {
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

func (b *writer) deadLetter(t *warehouse.Table, vals []any, msg string) warehouse.DeadLetterRow {
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
