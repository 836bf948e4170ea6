// Package bqfake is a test fake of BigQuery that speaks the real wire
// protocols: an in-process gRPC server of the Storage Write API
// (storagepb.BigQueryWriteServer) and an HTTP server of the REST endpoints
// the warehouse uses (datasets and tables insert/get/patch, load jobs with
// media upload, jobs.get).
//
// With a QueryEngine (SetQueryEngine), it also answers jobs.query: the
// engine runs the SQL over a copy of the dataset's tables.
//
// The write server decodes each appended row with the descriptor the writer
// sends, checks it against the table schema the REST side holds (unknown
// columns, types, REQUIRED columns, TIMESTAMP and DATE ranges) and answers
// like BigQuery: a request with bad rows gets row_errors and stores nothing.
// Tests can inject transient errors and read the stored rows back.
package bqfake

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// Server is the fake. Its zero value is not usable; call Start.
type Server struct {
	// GRPCAddr is host:port of the Storage Write API server (plaintext).
	GRPCAddr string
	// HTTPAddr is host:port of the REST server.
	HTTPAddr string

	// Reject, if set, is asked about every decoded row and rejects it with
	// the returned message when that is not empty.
	Reject func(table string, row map[string]any) string

	mu       sync.Mutex
	datasets map[string]*bq.Dataset // "project.dataset"
	tables   map[string]*table      // "project.dataset.table"
	jobs     map[string]*bq.Job
	failNext int
	failCode codes.Code
	stats    Stats
	nextID   int
	version  int64 // counts every change of stored rows or schemas
	engine   QueryEngine
	// failQueries queries containing failQuerySQL fail (FailQueries).
	failQueries  int
	failQuerySQL string
	results      map[string]*bq.GetQueryResultsResponse // "project.job"

	grpcServer *grpc.Server
	httpServer *http.Server
}

// Stats counts what the fake saw.
type Stats struct {
	AppendRequests int // AppendRows requests received
	InjectedErrors int // requests failed with an injected error
	RowErrors      int // rows rejected
	RowsStored     int // rows stored by appends
	TableInserts   int
	TablePatches   int
	DatasetInserts int
	// MaxRequestBytes is the size of the largest AppendRows request seen.
	MaxRequestBytes int
	Queries         int // jobs.query requests answered
}

// MaxAppendBytes is BigQuery's limit on one AppendRows request: larger
// requests are refused with INVALID_ARGUMENT, as the service does.
const MaxAppendBytes = 10_000_000

type table struct {
	meta *bq.Table
	rows []map[string]any
	gen  int
}

// TB is what Start needs of its caller: a testing.TB, or a program's own
// (a rehearsal runs the fake outside a test).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start starts both servers on loopback ports and stops them when the test
// ends.
func Start(t TB) *Server {
	t.Helper()
	s := &Server{
		datasets: map[string]*bq.Dataset{},
		tables:   map[string]*table{},
		jobs:     map[string]*bq.Job{},
		results:  map[string]*bq.GetQueryResultsResponse{},
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bqfake: listen: %v", err)
	}
	s.GRPCAddr = gl.Addr().String()
	// Above gRPC's default 4 MB receive limit, so that the fake sees (and
	// refuses, as BigQuery does) requests of 10 MB or more.
	s.grpcServer = grpc.NewServer(grpc.MaxRecvMsgSize(4 * MaxAppendBytes))
	storagepb.RegisterBigQueryWriteServer(s.grpcServer, &writeServer{s: s})
	go s.grpcServer.Serve(gl)

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bqfake: listen: %v", err)
	}
	s.HTTPAddr = hl.Addr().String()
	s.httpServer = &http.Server{Handler: s.restHandler()}
	go s.httpServer.Serve(hl)

	t.Cleanup(func() {
		s.grpcServer.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.httpServer.Shutdown(ctx)
	})
	return s
}

// restOptions are client options that reach the REST server.
func (s *Server) restOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint("http://" + s.HTTPAddr + "/bigquery/v2/"),
		option.WithoutAuthentication(),
	}
}

// storageOptions are client options that reach the Storage Write server.
func (s *Server) storageOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.GRPCAddr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// SetEnv points BIGQUERY_EMULATOR_HOST and BIGQUERY_STORAGE_EMULATOR_HOST at
// the fake for the rest of the test.
func (s *Server) SetEnv(t testing.TB) {
	t.Setenv("BIGQUERY_EMULATOR_HOST", s.HTTPAddr)
	t.Setenv("BIGQUERY_STORAGE_EMULATOR_HOST", s.GRPCAddr)
}

// FailAppends makes the next n AppendRows requests fail with code, ending
// their stream, before anything is stored.
func (s *Server) FailAppends(n int, code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failCode = n, code
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Rows returns a copy of the rows stored in a table. Values are string,
// int64, float64, bool, []byte, time.Time (TIMESTAMP, UTC) or civil.Date
// (DATE); a NULL column is absent.
func (s *Server) Rows(project, dataset, tableID string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	tb := s.tables[project+"."+dataset+"."+tableID]
	if tb == nil {
		return nil
	}
	out := make([]map[string]any, len(tb.rows))
	for i, r := range tb.rows {
		m := make(map[string]any, len(r))
		for k, v := range r {
			m[k] = v
		}
		out[i] = m
	}
	return out
}

// Table returns the metadata of a table, or nil.
func (s *Server) Table(project, dataset, tableID string) *bq.Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tb := s.tables[project+"."+dataset+"."+tableID]; tb != nil {
		return tb.meta
	}
	return nil
}

// Dataset returns the metadata of a dataset, or nil.
func (s *Server) Dataset(project, dataset string) *bq.Dataset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.datasets[project+"."+dataset]
}

// TableNames returns the tables of a dataset, sorted.
func (s *Server) TableNames(project, dataset string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	prefix := project + "." + dataset + "."
	for k := range s.tables {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			names = append(names, rest)
		}
	}
	sort.Strings(names)
	return names
}

// AddColumn-free helper for tests: DropColumn removes a column from a table's
// schema, as if the table had been created by an older version.
func (s *Server) DropColumn(project, dataset, tableID, column string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tb := s.tables[project+"."+dataset+"."+tableID]
	if tb == nil {
		return
	}
	var kept []*bq.TableFieldSchema
	for _, f := range tb.meta.Schema.Fields {
		if f.Name != column {
			kept = append(kept, f)
		}
	}
	tb.meta.Schema.Fields = kept
	tb.gen++
	s.version++
	tb.meta.Etag = fmt.Sprint(tb.gen)
}

// column returns the schema field called name.
func (tb *table) column(name string) *bq.TableFieldSchema {
	for _, f := range tb.meta.Schema.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// partitionDate returns the partition day of a stored row.
func (tb *table) partitionDate(row map[string]any) (civil.Date, bool) {
	tp := tb.meta.TimePartitioning
	if tp == nil || tp.Field == "" {
		return civil.Date{}, false
	}
	switch v := row[tp.Field].(type) {
	case time.Time:
		return civil.DateOf(v.UTC()), true
	case civil.Date:
		return v, true
	}
	return civil.Date{}, false
}
