package bqfake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
)

// QueryEngine runs the SQL of a jobs.query over a dataset's tables. The
// fake has none of its own: BigQuery's SQL is the engine's to answer
// (internal/testkit/bqfake/duckq answers with DuckDB).
type QueryEngine interface {
	// Query runs sql over tables, a copy of the default dataset's tables
	// as of version (which changes whenever rows or schemas do), and
	// returns the result's columns and rows, each value a type Rows
	// returns, or nil for NULL.
	Query(ctx context.Context, sql string, version int64, tables []QueryTable) ([]*bq.TableFieldSchema, [][]any, error)
}

// QueryTable is one table handed to a QueryEngine.
type QueryTable struct {
	Name   string
	Schema []*bq.TableFieldSchema
	Rows   []map[string]any
}

// SetQueryEngine makes the fake answer jobs.query with e.
func (s *Server) SetQueryEngine(e QueryEngine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.engine = e
}

// FailQueries makes the next n queries whose SQL contains substr fail as
// BigQuery refuses a caller without bigquery.jobs.create: 403 accessDenied
// (an error its clients do not retry).
func (s *Server) FailQueries(n int, substr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failQueries, s.failQuerySQL = n, substr
}

// queries returns how many queries the fake answered.
func (s *Server) queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Queries
}

// query answers jobs.query synchronously, with every row in the response
// (jobComplete, no page token), as the client's fast path reads it.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	var req bq.QueryRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Query == "" {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("bqfake: bad query request: %v", err))
		return
	}
	if req.UseLegacySql != nil && *req.UseLegacySql {
		writeError(w, http.StatusBadRequest, "invalid", "bqfake: legacy SQL is not supported")
		return
	}
	dataset := ""
	if d := req.DefaultDataset; d != nil {
		if d.ProjectId != "" {
			project = d.ProjectId
		}
		dataset = d.DatasetId
	}
	s.mu.Lock()
	if s.failQueries > 0 && strings.Contains(req.Query, s.failQuerySQL) {
		s.failQueries--
		s.stats.InjectedErrors++
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "accessDenied", "Access Denied: Project "+project+": User does not have bigquery.jobs.create permission in project "+project+".")
		return
	}
	engine, version := s.engine, s.version
	if engine == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotImplemented, "notImplemented", "bqfake: no query engine (SetQueryEngine)")
		return
	}
	if s.datasets[project+"."+dataset] == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "notFound", "Not found: Dataset "+project+":"+dataset)
		return
	}
	var tables []QueryTable
	prefix := project + "." + dataset + "."
	for k, tb := range s.tables {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		// The rows' maps are never changed once stored: a shallow copy
		// of the slice is a snapshot.
		tables = append(tables, QueryTable{Name: name, Schema: tb.meta.Schema.Fields, Rows: tb.rows[:len(tb.rows):len(tb.rows)]})
	}
	s.nextID++
	jobID := fmt.Sprintf("bqfake-query-%d", s.nextID)
	s.stats.Queries++
	s.mu.Unlock()

	fields, rows, err := engine.Query(r.Context(), req.Query, version, tables)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidQuery", err.Error())
		return
	}
	out := make([]*bq.TableRow, len(rows))
	for i, row := range rows {
		cells := make([]*bq.TableCell, len(row))
		for j, v := range row {
			cells[j] = &bq.TableCell{V: restValue(v)}
		}
		out[i] = &bq.TableRow{F: cells}
	}
	res := &bq.GetQueryResultsResponse{
		Kind:         "bigquery#getQueryResultsResponse",
		JobReference: &bq.JobReference{ProjectId: project, JobId: jobID, Location: "US"},
		Schema:       &bq.TableSchema{Fields: fields},
		Rows:         out,
		TotalRows:    uint64(len(rows)),
		JobComplete:  true,
	}
	s.mu.Lock()
	s.results[project+"."+jobID] = res
	s.mu.Unlock()
	writeJSON(w, &bq.QueryResponse{Kind: "bigquery#queryResponse", JobReference: res.JobReference, Schema: res.Schema,
		Rows: res.Rows, TotalRows: res.TotalRows, JobComplete: true})
}

// queryResults answers jobs.getQueryResults of a query answered before (the
// client asks when the first answer had no rows), all rows in one page.
func (s *Server) queryResults(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project") + "." + r.PathValue("job")
	s.mu.Lock()
	res := s.results[key]
	s.mu.Unlock()
	if res == nil {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Job "+key)
		return
	}
	if r.URL.Query().Get("maxResults") == "0" {
		cp := *res
		cp.Rows = nil
		res = &cp
	}
	writeJSON(w, res)
}

// restValue is v as BigQuery's REST API sends a cell: a string (TIMESTAMP
// as Unix microseconds, as the client asks with useInt64Timestamp), or nil.
func restValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return strconv.FormatInt(x.UnixMicro(), 10)
	case civil.Date:
		return x.String()
	}
	return fmt.Sprint(v)
}
