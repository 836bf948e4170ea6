package trigger_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/inventory-events/inventory/reports/trigger"
)

const (
	// The two URLs Cloud Run gives one service: hash-based and deterministic.
	testAudience         = "https://nightly-trigger-abc123-ew.a.run.app"
	testAudienceDetermin = "https://nightly-trigger-123456789012.europe-west1.run.app"
	invokerSA            = "scheduler-invoker@inventory-prod.iam.gserviceaccount.com"
	testKeyID            = "test-key-1"
)

// jwks serves a JSON Web Key Set for key, in the shape of Google's
// https://www.googleapis.com/oauth2/v3/certs.
func jwks(t *testing.T, key *rsa.PublicKey) *httptest.Server {
	t.Helper()
	body, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": testKeyID,
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// redirectTransport sends every request (to Google's cert URLs) to target.
type redirectTransport struct {
	target *url.URL
	hits   atomic.Int32
}

func (rt *redirectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.hits.Add(1)
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rt.target.Scheme, rt.target.Host
	r.Host = rt.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

func sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestRequireOIDC(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certs := jwks(t, &key.PublicKey)
	u, _ := url.Parse(certs.URL)
	rt := &redirectTransport{target: u}
	v, err := idtoken.NewValidator(context.Background(), option.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := trigger.RequireOIDC(v, trigger.OIDCConfig{Audiences: []string{testAudience, testAudienceDetermin + "/"}, AllowedEmails: []string{invokerSA}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var gotCaller string
	h := auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCaller, _ = trigger.Caller(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))

	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": "https://accounts.google.com", "aud": testAudience,
			"sub": "112233445566778899", "email": invokerSA, "email_verified": true,
			"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	valid := sign(t, key, testKeyID, claims(nil))
	parts := strings.Split(valid, ".")

	tests := []struct {
		name     string
		header   []string
		wantCode int
	}{
		{"valid", []string{"Bearer " + valid}, 204},
		{"scheme is case-insensitive", []string{"bearer " + valid}, 204},
		{"email case-insensitive", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["email"] = strings.ToUpper(invokerSA) }))}, 204},
		{"missing", nil, 401},
		{"empty bearer", []string{"Bearer "}, 401},
		{"basic auth", []string{"Basic dXNlcjpwYXNz"}, 401},
		{"two headers", []string{"Bearer " + valid, "Bearer " + valid}, 401},
		{"malformed", []string{"Bearer not-a-jwt"}, 401},
		{"malformed segments", []string{"Bearer a.b.c"}, 401},
		{"too long", []string{"Bearer " + strings.Repeat("a", 9000)}, 401},
		{"expired", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }))}, 401},
		{"deterministic URL as audience", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["aud"] = testAudienceDetermin }))}, 204},
		{"audience with trailing slash", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["aud"] = testAudience + "/" }))}, 204},
		{"audience of another region", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["aud"] = "https://nightly-trigger-123456789012.us-central1.run.app" }))}, 401},
		{"audience of another project", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["aud"] = "https://nightly-trigger-999999999999.europe-west1.run.app" }))}, 401},
		{"audience with a path", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["aud"] = testAudience + "/v1/nightly" }))}, 401},
		{"no audience", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { delete(c, "aud") }))}, 401},
		{"wrong audience", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["aud"] = "https://other.a.run.app" }))}, 401},
		{"wrong issuer", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["iss"] = "https://evil.example" }))}, 401},
		{"signed by another key", []string{"Bearer " + sign(t, otherKey, testKeyID, claims(nil))}, 401},
		{"unknown key id", []string{"Bearer " + sign(t, key, "other-kid", claims(nil))}, 401},
		{"tampered payload", []string{"Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"`+testAudience+`","email":"`+invokerSA+`","email_verified":true,"iss":"https://accounts.google.com","exp":9999999999}`)) + "." + parts[2]}, 401},
		{"signature removed by Cloud Run", []string{"Bearer " + parts[0] + "." + parts[1] + ".SIGNATURE_REMOVED_BY_GOOGLE"}, 401},
		{"wrong account", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["email"] = "intruder@inventory-prod.iam.gserviceaccount.com" }))}, 403},
		{"unverified email", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { c["email_verified"] = false }))}, 403},
		{"no email", []string{"Bearer " + sign(t, key, testKeyID, claims(func(c map[string]any) { delete(c, "email") }))}, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotCaller = ""
			req := httptest.NewRequest("POST", "/v1/nightly", nil)
			for _, hv := range tc.header {
				req.Header.Add("Authorization", hv)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d (%s)", rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantCode == 204 && !strings.EqualFold(gotCaller, invokerSA) {
				t.Fatalf("caller = %q, want %s", gotCaller, invokerSA)
			}
			if tc.wantCode != 204 && gotCaller != "" {
				t.Fatalf("handler ran for a refused request")
			}
			if tc.wantCode == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("401 without WWW-Authenticate")
			}
		})
	}
	if rt.hits.Load() == 0 {
		t.Fatal("the validator never fetched the local JWKS")
	}
}

func TestServerWithOIDCKeepsHealthzOpen(t *testing.T) {
	deny := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	}
	l := trigger.NewLocalLauncher(func(context.Context, string) (string, error) { return "", nil }, nil)
	defer l.Close(context.Background())
	h := trigger.NewServer(trigger.Config{Auth: deny}, l, nil)
	for target, want := range map[string]int{"/healthz": 200, "/v1/nightly/2026-11-20": 401} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", target, rec.Code, want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/nightly", nil))
	if rec.Code != 401 {
		t.Errorf("POST /v1/nightly = %d, want 401", rec.Code)
	}
}

func TestRequireOIDCConfig(t *testing.T) {
	v, _ := idtoken.NewValidator(context.Background(), option.WithHTTPClient(http.DefaultClient))
	for name, cfg := range map[string]trigger.OIDCConfig{
		"no audience":        {AllowedEmails: []string{invokerSA}},
		"blank audience":     {Audiences: []string{" "}, AllowedEmails: []string{invokerSA}},
		"audience not a URL": {Audiences: []string{"nightly-trigger"}, AllowedEmails: []string{invokerSA}},
		"http audience":      {Audiences: []string{"http://nightly-trigger-abc123-ew.a.run.app"}, AllowedEmails: []string{invokerSA}},
		"no emails":          {Audiences: []string{testAudience}},
	} {
		if _, err := trigger.RequireOIDC(v, cfg, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
