package bqfake

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
)

// restHandler serves the BigQuery v2 REST endpoints the warehouse uses.
func (s *Server) restHandler() http.Handler {
	mux := http.NewServeMux()
	const p = "/bigquery/v2/projects/{project}"
	mux.HandleFunc("POST "+p+"/datasets", s.insertDataset)
	mux.HandleFunc("GET "+p+"/datasets/{dataset}", s.getDataset)
	mux.HandleFunc("POST "+p+"/datasets/{dataset}/tables", s.insertTable)
	mux.HandleFunc("GET "+p+"/datasets/{dataset}/tables/{table}", s.getTable)
	mux.HandleFunc("PATCH "+p+"/datasets/{dataset}/tables/{table}", s.patchTable)
	mux.HandleFunc("PUT "+p+"/datasets/{dataset}/tables/{table}", s.patchTable)
	mux.HandleFunc("POST /upload"+p+"/jobs", s.insertLoadJob)
	mux.HandleFunc("GET "+p+"/jobs/{job}", s.getJob)
	mux.HandleFunc("POST "+p+"/queries", s.query)
	mux.HandleFunc("GET "+p+"/queries/{job}", s.queryResults)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotImplemented, "notImplemented", fmt.Sprintf("bqfake: %s %s is not implemented", r.Method, r.URL.Path))
	})
	return mux
}

// writeError answers in the error format of Google APIs.
func writeError(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg,
		"errors": []map[string]string{{"reason": reason, "message": msg, "domain": "global"}},
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) insertDataset(w http.ResponseWriter, r *http.Request) {
	var ds bq.Dataset
	if err := json.NewDecoder(r.Body).Decode(&ds); err != nil || ds.DatasetReference == nil {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("bad dataset: %v", err))
		return
	}
	project := r.PathValue("project")
	key := project + "." + ds.DatasetReference.DatasetId
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.datasets[key] != nil {
		writeError(w, http.StatusConflict, "duplicate", "Already Exists: Dataset "+project+":"+ds.DatasetReference.DatasetId)
		return
	}
	if ds.Location == "" {
		ds.Location = "US"
	}
	ds.DatasetReference.ProjectId = project
	ds.Id = project + ":" + ds.DatasetReference.DatasetId
	ds.Kind = "bigquery#dataset"
	ds.Etag = "1"
	ds.CreationTime = time.Now().UnixMilli()
	s.datasets[key] = &ds
	s.stats.DatasetInserts++
	writeJSON(w, &ds)
}

func (s *Server) getDataset(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project") + "." + r.PathValue("dataset")
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := s.datasets[key]
	if ds == nil {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Dataset "+key)
		return
	}
	writeJSON(w, ds)
}

func (s *Server) insertTable(w http.ResponseWriter, r *http.Request) {
	var t bq.Table
	if err := json.NewDecoder(r.Body).Decode(&t); err != nil || t.TableReference == nil {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("bad table: %v", err))
		return
	}
	project, dataset := r.PathValue("project"), r.PathValue("dataset")
	key := project + "." + dataset + "." + t.TableReference.TableId
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.datasets[project+"."+dataset] == nil {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Dataset "+project+":"+dataset)
		return
	}
	if s.tables[key] != nil {
		writeError(w, http.StatusConflict, "duplicate", "Already Exists: Table "+key)
		return
	}
	if msg := validateTable(&t); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid", msg)
		return
	}
	t.TableReference.ProjectId, t.TableReference.DatasetId = project, dataset
	t.Id = project + ":" + dataset + "." + t.TableReference.TableId
	t.Kind = "bigquery#table"
	t.Type = "TABLE"
	t.Etag = "1"
	t.CreationTime = time.Now().UnixMilli()
	s.tables[key] = &table{meta: &t, gen: 1}
	s.version++
	s.stats.TableInserts++
	writeJSON(w, &t)
}

// validateTable checks what BigQuery checks on insert: a schema, a
// partitioning column of type DATE or TIMESTAMP, clustering on existing
// columns (at most four).
func validateTable(t *bq.Table) string {
	if t.Schema == nil || len(t.Schema.Fields) == 0 {
		return "table has no schema"
	}
	types := map[string]string{}
	for _, f := range t.Schema.Fields {
		if _, dup := types[f.Name]; dup {
			return "duplicate column " + f.Name
		}
		types[f.Name] = f.Type
	}
	if tp := t.TimePartitioning; tp != nil && tp.Field != "" {
		switch types[tp.Field] {
		case "DATE", "TIMESTAMP", "DATETIME":
		default:
			return fmt.Sprintf("The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: %s.", types[tp.Field])
		}
	}
	if c := t.Clustering; c != nil {
		if len(c.Fields) > 4 {
			return "Too many clustering fields"
		}
		for _, f := range c.Fields {
			if types[f] == "" {
				return "The field specified for clustering cannot be found in the schema: " + f
			}
		}
	}
	return ""
}

func (s *Server) getTable(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project") + "." + r.PathValue("dataset") + "." + r.PathValue("table")
	s.mu.Lock()
	defer s.mu.Unlock()
	tb := s.tables[key]
	if tb == nil {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Table "+key)
		return
	}
	writeJSON(w, tb.meta)
}

// patchTable applies a table patch. Schema changes may only add NULLABLE
// columns or relax REQUIRED to NULLABLE, as in BigQuery.
func (s *Server) patchTable(w http.ResponseWriter, r *http.Request) {
	var patch bq.Table
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	key := r.PathValue("project") + "." + r.PathValue("dataset") + "." + r.PathValue("table")
	s.mu.Lock()
	defer s.mu.Unlock()
	tb := s.tables[key]
	if tb == nil {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Table "+key)
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != tb.meta.Etag {
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet", "Precondition check failed.")
		return
	}
	next := *tb.meta
	if patch.Schema != nil {
		old := map[string]*bq.TableFieldSchema{}
		for _, f := range tb.meta.Schema.Fields {
			old[f.Name] = f
		}
		seen := map[string]bool{}
		for _, f := range patch.Schema.Fields {
			seen[f.Name] = true
			o := old[f.Name]
			switch {
			case o == nil && f.Mode == "REQUIRED":
				writeError(w, http.StatusBadRequest, "invalid", "Provided Schema does not match Table "+key+". Cannot add required fields to an existing schema. (field: "+f.Name+")")
				return
			case o != nil && o.Type != f.Type:
				writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Provided Schema does not match Table %s. Field %s has changed type from %s to %s", key, f.Name, o.Type, f.Type))
				return
			case o != nil && o.Mode != "REQUIRED" && f.Mode == "REQUIRED":
				writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Provided Schema does not match Table %s. Field %s has changed mode from NULLABLE to REQUIRED", key, f.Name))
				return
			}
		}
		for name := range old {
			if !seen[name] {
				writeError(w, http.StatusBadRequest, "invalid", "Provided Schema does not match Table "+key+". Cannot drop field "+name)
				return
			}
		}
		next.Schema = patch.Schema
	}
	if patch.Description != "" {
		next.Description = patch.Description
	}
	if patch.Clustering != nil {
		next.Clustering = patch.Clustering
	}
	if msg := validateTable(&next); msg != "" {
		writeError(w, http.StatusBadRequest, "invalid", msg)
		return
	}
	tb.gen++
	next.Etag = strconv.Itoa(tb.gen)
	next.LastModifiedTime = uint64(time.Now().UnixMilli())
	tb.meta = &next
	s.version++
	s.stats.TablePatches++
	writeJSON(w, tb.meta)
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project") + "." + r.PathValue("job")
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[key]
	if j == nil {
		writeError(w, http.StatusNotFound, "notFound", "Not found: Job "+key)
		return
	}
	writeJSON(w, j)
}

// insertLoadJob runs a load job of newline-delimited JSON sent as a
// multipart upload, synchronously.
func (s *Server) insertLoadJob(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	job, data, err := readMultipartJob(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "bqfake: "+err.Error())
		return
	}
	load := job.Configuration.Load
	if load == nil || load.DestinationTable == nil {
		writeError(w, http.StatusBadRequest, "invalid", "bqfake: only load jobs with a destination table are supported")
		return
	}
	if job.JobReference == nil {
		job.JobReference = &bq.JobReference{}
	}
	job.JobReference.ProjectId = project
	if job.JobReference.JobId == "" {
		s.mu.Lock()
		s.nextID++
		job.JobReference.JobId = fmt.Sprintf("bqfake-job-%d", s.nextID)
		s.mu.Unlock()
	}
	job.Kind = "bigquery#job"
	job.Id = project + ":" + job.JobReference.JobId
	job.Status = &bq.JobStatus{State: "DONE"}
	if err := s.load(load, data); err != nil {
		job.Status.ErrorResult = &bq.ErrorProto{Reason: "invalid", Message: err.Error()}
		job.Status.Errors = []*bq.ErrorProto{job.Status.ErrorResult}
	}
	s.mu.Lock()
	s.jobs[project+"."+job.JobReference.JobId] = job
	s.mu.Unlock()
	writeJSON(w, job)
}

func readMultipartJob(r *http.Request) (*bq.Job, []byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return nil, nil, fmt.Errorf("want a multipart upload, got %q", r.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil {
		return nil, nil, err
	}
	var job bq.Job
	if err := json.NewDecoder(part).Decode(&job); err != nil {
		return nil, nil, fmt.Errorf("job metadata: %w", err)
	}
	part, err = mr.NextPart()
	if err != nil {
		return nil, nil, fmt.Errorf("media part: %w", err)
	}
	data, err := io.ReadAll(part)
	if err != nil {
		return nil, nil, err
	}
	if job.Configuration == nil {
		return nil, nil, fmt.Errorf("job has no configuration")
	}
	return &job, data, nil
}

// load applies a load job: rows of newline-delimited JSON into a table or a
// partition (table$YYYYMMDD), appending or truncating.
func (s *Server) load(load *bq.JobConfigurationLoad, data []byte) error {
	if load.SourceFormat != "NEWLINE_DELIMITED_JSON" {
		return fmt.Errorf("source format %q is not supported", load.SourceFormat)
	}
	ref := load.DestinationTable
	tableID, decorator, hasDecorator := strings.Cut(ref.TableId, "$")
	s.mu.Lock()
	defer s.mu.Unlock()
	tb := s.tables[ref.ProjectId+"."+ref.DatasetId+"."+tableID]
	if tb == nil {
		return fmt.Errorf("Not found: Table %s:%s.%s", ref.ProjectId, ref.DatasetId, tableID)
	}
	var partition civil.Date
	if hasDecorator {
		t, err := time.Parse("20060102", decorator)
		if err != nil {
			return fmt.Errorf("invalid partition decorator %q", decorator)
		}
		partition = civil.DateOf(t)
	}
	var rows []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 100<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		row, err := jsonRow(tb, sc.Bytes())
		if err != nil {
			return fmt.Errorf("Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: %d; %v", line, err)
		}
		if hasDecorator {
			if d, ok := tb.partitionDate(row); !ok || d != partition {
				return fmt.Errorf("row %d is outside partition %s", line, decorator)
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if load.WriteDisposition == "WRITE_TRUNCATE" {
		kept := tb.rows[:0:0]
		for _, r := range tb.rows {
			if d, ok := tb.partitionDate(r); hasDecorator && (!ok || d != partition) {
				kept = append(kept, r)
			}
		}
		tb.rows = kept
	}
	tb.rows = append(tb.rows, rows...)
	s.version++
	return nil
}

// jsonRow converts one JSON object to column values like the write server.
func jsonRow(tb *table, line []byte) (map[string]any, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	row := map[string]any{}
	for k, v := range raw {
		col := tb.column(k)
		if col == nil {
			return nil, fmt.Errorf("no such field: %s", k)
		}
		if v == nil {
			continue
		}
		val, err := jsonValue(col, v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		row[k] = val
	}
	for _, col := range tb.meta.Schema.Fields {
		if _, ok := row[col.Name]; !ok && col.Mode == "REQUIRED" {
			return nil, fmt.Errorf("missing required field %s", col.Name)
		}
	}
	return row, nil
}

func jsonValue(col *bq.TableFieldSchema, v any) (any, error) {
	str := fmt.Sprint(v)
	switch col.Type {
	case "STRING":
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("not a string: %v", v)
		}
		return s, nil
	case "INTEGER", "INT64":
		return strconv.ParseInt(str, 10, 64)
	case "FLOAT", "FLOAT64":
		return strconv.ParseFloat(str, 64)
	case "BOOLEAN", "BOOL":
		return strconv.ParseBool(str)
	case "BYTES":
		return base64.StdEncoding.DecodeString(str)
	case "TIMESTAMP":
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999 MST", "2006-01-02 15:04:05.999999Z07:00"} {
			if t, err := time.Parse(layout, str); err == nil {
				return t.UTC(), nil
			}
		}
		return nil, fmt.Errorf("invalid timestamp %q", str)
	case "DATE":
		return civil.ParseDate(str)
	}
	return nil, fmt.Errorf("unsupported type %s", col.Type)
}
