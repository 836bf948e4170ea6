package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	df "google.golang.org/api/dataflow/v1b3"
)

// cloud is the rehearsal's Google Cloud: a local OAuth token endpoint, a
// fake of the Dataflow REST API (v1b3, as Beam's runner calls it) and
// fake-gcs-server, with a service-account key file for the first.
type cloud struct {
	api   *httptest.Server
	gcs   *fakestorage.Server
	creds string // GOOGLE_APPLICATION_CREDENTIALS

	mu         sync.Mutex
	tokens     int       // access tokens issued
	created    []*df.Job // jobs.create bodies
	unexpected []string  // requests the fake does not serve
	unauthed   []string  // Dataflow calls without the issued token
	jobState   string    // what jobs.get answers
	running    []*df.Job // what jobs.list answers
	calls      []string  // method and path of each Dataflow call
	bigquery   []string  // BigQuery REST calls (BIGQUERY_EMULATOR_HOST points here)
}

const accessToken = "deploycheck-access-token"

// startCloud starts the fakes, with the staging bucket; close stops them.
// The key is written to dir (the run's scratch directory, deleted with it).
func startCloud(dir, stagingBkt string) (*cloud, error) {
	c := &cloud{jobState: "JOB_STATE_DONE"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", c.token)
	mux.HandleFunc("POST /v1b3/projects/{project}/locations/{region}/jobs", c.createJob)
	mux.HandleFunc("GET /v1b3/projects/{project}/locations/{region}/jobs", c.listJobs)
	mux.HandleFunc("GET /v1b3/projects/{project}/locations/{region}/jobs/{id}", c.getJob)
	mux.HandleFunc("GET /v1b3/projects/{project}/locations/{region}/jobs/{id}/metrics", c.metrics)
	// BigQuery stays on this machine too: its calls are recorded. The
	// warehouse is a new one (the first night): a count is 0; anything
	// else is answered with an error, since no fake here runs queries.
	mux.HandleFunc("POST /bigquery/v2/projects/{project}/queries", c.query)
	mux.HandleFunc("/bigquery/v2/", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.bigquery = append(c.bigquery, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/bigquery/v2"))
		c.mu.Unlock()
		http.Error(w, `{"error":{"code":501,"message":"deploycheck serves no BigQuery"}}`, http.StatusNotImplemented)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.unexpected = append(c.unexpected, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
		http.Error(w, `{"error":{"code":404,"message":"not served by the deploycheck fake"}}`, http.StatusNotFound)
	})
	c.api = httptest.NewServer(mux)

	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard})
	if err != nil {
		c.api.Close()
		return nil, fmt.Errorf("fake-gcs-server: %w", err)
	}
	c.gcs = gcs
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: stagingBkt})

	// A throwaway key: generated now, written to the scratch directory,
	// good only for the local token endpoint.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		c.close()
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		c.close()
		return nil, err
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "deploycheck-throwaway",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   sa("deploycheck-launcher"),
		"client_id":      "1",
		"token_uri":      c.api.URL + "/token",
	})
	if err != nil {
		c.close()
		return nil, err
	}
	c.creds = filepath.Join(dir, "launcher-credentials.json")
	if err := os.WriteFile(c.creds, b, 0o600); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *cloud) close() {
	c.api.Close()
	if c.gcs != nil {
		c.gcs.Stop()
	}
}

// env is the launch's environment: credentials and the storage emulator.
func (c *cloud) env() []string {
	return []string{
		"GOOGLE_APPLICATION_CREDENTIALS=" + c.creds,
		"STORAGE_EMULATOR_HOST=" + strings.TrimPrefix(c.gcs.URL(), "http://"),
		"BIGQUERY_EMULATOR_HOST=" + strings.TrimPrefix(c.api.URL, "http://"),
	}
}

// endpoint is the --dataflow_endpoint of the fake.
func (c *cloud) endpoint() string { return c.api.URL + "/" }

// token is the OAuth 2.0 JWT-bearer token endpoint a service-account key's
// token_uri names.
func (c *cloud) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" ||
		strings.Count(r.PostForm.Get("assertion"), ".") != 2 {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.tokens++
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, accessToken)
}

func (c *cloud) authed(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		c.unauthed = append(c.unauthed, r.Method+" "+r.URL.Path)
	}
}

func (c *cloud) createJob(w http.ResponseWriter, r *http.Request) {
	c.authed(r)
	var job df.Job
	if err := json.NewDecoder(r.Body).Decode(&job); err != nil {
		http.Error(w, `{"error":{"code":400,"message":"bad job"}}`, http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	job.Id = fmt.Sprintf("2026-11-25_03_00_00-deploycheck-%d", len(c.created)+1)
	job.CurrentState = "JOB_STATE_PENDING"
	c.created = append(c.created, &job)
	c.mu.Unlock()
	writeJSON(w, &job)
}

// getJob answers jobs.get with a terminal state, so the launcher's wait
// (Beam polls every 30 s) ends at once.
func (c *cloud) getJob(w http.ResponseWriter, r *http.Request) {
	c.authed(r)
	c.mu.Lock()
	state := c.jobState
	c.mu.Unlock()
	writeJSON(w, &df.Job{Id: r.PathValue("id"), ProjectId: r.PathValue("project"), CurrentState: state})
}

// listJobs answers jobs.list (Beam's --update looks the running job up by
// name) with c.running.
func (c *cloud) listJobs(w http.ResponseWriter, r *http.Request) {
	c.authed(r)
	c.mu.Lock()
	jobs := c.running
	c.mu.Unlock()
	writeJSON(w, &df.ListJobsResponse{Jobs: jobs})
}

func (c *cloud) metrics(w http.ResponseWriter, r *http.Request) {
	c.authed(r)
	writeJSON(w, &df.JobMetrics{})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// jobs returns the jobs created so far and resets the record.
func (c *cloud) takeJobs() (created []*df.Job, unexpected, unauthed, calls []string, tokens int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	created, unexpected, unauthed, calls, tokens = c.created, c.unexpected, c.unauthed, c.calls, c.tokens
	c.created, c.unexpected, c.unauthed, c.calls, c.tokens = nil, nil, nil, nil, 0
	return
}

// takeBigQuery returns the BigQuery calls so far and resets the record.
func (c *cloud) takeBigQuery() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.bigquery
	c.bigquery = nil
	return out
}

// countQuery matches the counts a job asks before it submits: SELECT
// count(*) AS n[, COUNT(...) AS m ...] FROM ...; countAlias finds each
// column's name in its select list.
var (
	countQuery = regexp.MustCompile(`(?is)^\s*SELECT\s+(count\(\*\)\s+AS\s+\w+(?:\s*,\s*count\((?:[^()]|\([^()]*\))*\)\s+AS\s+\w+)*)\s+FROM\s`)
	countAlias = regexp.MustCompile(`(?i)\bAS\s+(\w+)`)
)

// query answers BigQuery's jobs.query as a warehouse that holds no rows
// yet: a count is 0. Other queries get 501.
func (c *cloud) query(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Query string `json:"query"`
	}
	err := json.NewDecoder(r.Body).Decode(&req)
	c.mu.Lock()
	c.bigquery = append(c.bigquery, "query "+strconv.Quote(oneLine(req.Query)))
	n := len(c.bigquery)
	c.mu.Unlock()
	m := countQuery.FindStringSubmatch(req.Query)
	if err != nil || m == nil {
		http.Error(w, `{"error":{"code":501,"message":"deploycheck answers only counts, as an empty warehouse"}}`, http.StatusNotImplemented)
		return
	}
	var fields, zeros []map[string]string
	for _, a := range countAlias.FindAllStringSubmatch(m[1], -1) {
		fields = append(fields, map[string]string{"name": a[1], "type": "INTEGER", "mode": "NULLABLE"})
		zeros = append(zeros, map[string]string{"v": "0"})
	}
	writeJSON(w, map[string]any{
		"kind":         "bigquery#queryResponse",
		"jobReference": map[string]string{"projectId": r.PathValue("project"), "jobId": fmt.Sprintf("deploycheck-query-%d", n)},
		"schema":       map[string]any{"fields": fields},
		"totalRows":    "1",
		"rows":         []map[string]any{{"f": zeros}},
		"jobComplete":  true,
	})
}
