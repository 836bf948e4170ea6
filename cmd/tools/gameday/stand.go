package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/internal/testkit/bqfake"
	"github.com/inventory-events/inventory/internal/testkit/bqfake/duckq"
	"github.com/inventory-events/inventory/internal/testkit/gcpfake"
	"github.com/inventory-events/inventory/internal/testkit/rehearse"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/reports/trigger"
)

// tb runs the fakes outside a test: cleanups at close, Fatalf panics.
type tb struct{ cleanups []func() }

func (*tb) Helper()                        {}
func (t *tb) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (*tb) Fatalf(format string, a ...any) { panic(fmt.Errorf(format, a...)) }
func (t *tb) close() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

// stand is the production fortnight's Google Cloud, on this machine: the
// local Pub/Sub, the BigQuery fake answering queries with DuckDB,
// fake-gcs-server, the fake Dataflow API (each launch run on Prism by the
// adapter), a fake of Google's ID-token issuer, and the trigger service
// configured as deploy/cloudbuild.yaml deploys it.
type stand struct {
	tb      *tb
	pubsub  *pubsubemu.Server
	bq      *bqfake.Server
	gcs     *fakestorage.Server
	df      *gcpfake.Dataflow
	issuer  *issuer
	trigger *httptest.Server
	env     map[string]string // the trigger's environment
	// audience and caller are what the Scheduler job's token carries.
	audience, caller string
}

// env is the environment of every process of the stand-in: the emulators'
// addresses, as the client libraries read them.
func (s *stand) envVars() []string {
	return []string{
		"PUBSUB_EMULATOR_HOST=" + s.pubsub.Addr(),
		"BIGQUERY_EMULATOR_HOST=" + s.bq.HTTPAddr,
		"BIGQUERY_STORAGE_EMULATOR_HOST=" + s.bq.GRPCAddr,
		"STORAGE_EMULATOR_HOST=" + strings.TrimPrefix(s.gcs.URL(), "http://"),
	}
}

func startStand(ctx context.Context, root string, a *adapter) (_ *stand, err error) {
	s := &stand{tb: &tb{}}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			if !ok {
				panic(r)
			}
			err = e
		}
		if err != nil {
			s.close()
		}
	}()
	if s.pubsub, err = pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{}); err != nil {
		return nil, fmt.Errorf("local Pub/Sub: %w", err)
	}
	s.bq = bqfake.Start(s.tb)
	eng, err := duckq.New()
	if err != nil {
		return nil, err
	}
	s.tb.Cleanup(func() { eng.Close() })
	s.bq.SetQueryEngine(eng)
	if s.gcs, err = fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard}); err != nil {
		return nil, fmt.Errorf("fake-gcs-server: %w", err)
	}
	for _, kv := range s.envVars() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v) // for this process's clients: the CLI and the trigger
	}

	var opts []option.ClientOption
	s.df, opts = gcpfake.StartDataflow(s.tb)
	a.stand = s
	s.df.OnLaunch(a.launch)

	if s.issuer, err = newIssuer(); err != nil {
		return nil, err
	}
	if s.env, err = rehearse.CloudbuildTriggerEnv(root, project, projectNumber); err != nil {
		return nil, err
	}
	dcfg, err := rehearse.TriggerDataflowConfig(s.env)
	if err != nil {
		return nil, err
	}
	for _, b := range []string{project + "-config", project + "-reports"} {
		s.gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	h, err := s.triggerHandler(ctx, dcfg, opts)
	if err != nil {
		return nil, err
	}
	s.trigger = httptest.NewServer(h)
	return s, nil
}

// triggerHandler is the trigger service as cmd/trigger's run builds it in
// production, from the environment cloudbuild.yaml deploys: the Dataflow
// launcher (here: on the fake API), the OIDC check with Google's validator
// (here: Google's keys served by the fake issuer), the wait for the run
// (RUN_WAIT, 100 s unless set) and the first-data check on the warehouse.
func (s *stand) triggerHandler(ctx context.Context, dcfg trigger.DataflowConfig, opts []option.ClientOption) (http.Handler, error) {
	launcher, err := trigger.NewDataflowLauncher(ctx, dcfg, opts...)
	if err != nil {
		return nil, err
	}
	s.tb.Cleanup(func() { launcher.Close() })
	v, err := idtoken.NewValidator(ctx, option.WithHTTPClient(s.issuer.client()))
	if err != nil {
		return nil, err
	}
	split := func(k string) []string {
		var out []string
		for _, x := range strings.Split(s.env[k], ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	auds, callers := split("EXPECTED_AUDIENCE"), split("INVOKER_SA_EMAIL")
	if len(auds) == 0 || len(callers) == 0 {
		return nil, fmt.Errorf("cloudbuild.yaml: the trigger has no EXPECTED_AUDIENCE or INVOKER_SA_EMAIL")
	}
	s.audience, s.caller = auds[0], callers[0]
	logger := slog.New(slog.NewJSONHandler(logFile("trigger"), nil))
	auth, err := trigger.RequireOIDC(v, trigger.OIDCConfig{Audiences: auds, AllowedEmails: callers}, logger)
	if err != nil {
		return nil, err
	}
	tz := s.env["TIME_ZONE"]
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, err
	}
	wait := 100 * time.Second // cmd/trigger's production default
	if v := s.env["RUN_WAIT"]; v != "" {
		if wait, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("RUN_WAIT %q: %w", v, err)
		}
	}
	wh := dcfg.Parameters["warehouse"]
	cfg := trigger.Config{Location: loc, Wait: wait, Auth: auth,
		// cmd/trigger leaves it at 10 s; a second here only makes the
		// fortnight shorter.
		PollInterval: time.Second,
		Earliest: func(ctx context.Context) (string, bool, error) {
			d, ok, err := warehouse.FirstDataDate(ctx, wh, loc.String())
			return d.String(), ok, err
		}}
	return trigger.NewServer(cfg, launcher, logger), nil
}

func (s *stand) close() {
	if s.trigger != nil {
		s.trigger.Close()
	}
	if s.issuer != nil {
		s.issuer.srv.Close()
	}
	s.tb.close()
	if s.gcs != nil {
		s.gcs.Stop()
	}
	if s.pubsub != nil {
		s.pubsub.Close()
	}
}

// post calls the trigger as Cloud Scheduler does (an ID token of email for
// the audience; no token when email is ""), and returns the status and the
// body.
func (s *stand) post(query, email string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, s.trigger.URL+"/v1/nightly?"+query, strings.NewReader("{}"))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if email != "" {
		tok, err := s.issuer.token(s.audience, email)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// issuer is a fake of Google's ID-token issuer: it signs tokens as
// accounts.google.com does (RS256, iss https://accounts.google.com, email,
// email_verified) with a key of its own, and serves that key at Google's
// certificate URL to the client it hands out.
type issuer struct {
	key *rsa.PrivateKey
	srv *httptest.Server
}

const issuerKeyID = "gameday-key"

func newIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	i := &issuer{key: key}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": issuerKeyID,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/v3/certs" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(jwks)
	}))
	return i, nil
}

// client is an HTTP client that reaches the issuer for Google's
// certificate URL (https://www.googleapis.com/oauth2/v3/certs) and nothing
// else.
func (i *issuer) client() *http.Client {
	target, _ := url.Parse(i.srv.URL)
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != "www.googleapis.com" || r.URL.Path != "/oauth2/v3/certs" {
			return nil, fmt.Errorf("gameday: the ID-token validator asked for %s, not Google's certificates", r.URL)
		}
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// token returns an ID token for audience of a verified email, valid for
// an hour.
func (i *issuer) token(audience, email string) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	head, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": issuerKeyID, "typ": "JWT"})
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": "https://accounts.google.com", "aud": audience, "sub": "1" + email,
		"email": email, "email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	signed := b64(head) + "." + b64(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + b64(sig), nil
}
