package pubsubemu

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
)

type pushed struct {
	header http.Header
	body   []byte
}

// pushEndpoint is a local push endpoint answering with the codes given in
// turn (the last one repeats).
type pushEndpoint struct {
	mu    sync.Mutex
	got   []pushed
	codes []int
	srv   *httptest.Server
}

func newPushEndpoint(t *testing.T, codes ...int) *pushEndpoint {
	e := &pushEndpoint{codes: codes}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.got = append(e.got, pushed{header: r.Header.Clone(), body: body})
		code := e.codes[min(len(e.got), len(e.codes))-1]
		e.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *pushEndpoint) requests() []pushed {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]pushed(nil), e.got...)
}

// TestPushWrappedRetriedUntil2xx: the wrapped JSON envelope, a 500 retried,
// a 204 acknowledging for good.
func TestPushWrappedRetriedUntil2xx(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	ep := newPushEndpoint(t, 500, 204)
	mustTopic(t, c, &pb.Topic{Name: topicName("push")})
	mustTopic(t, c, &pb.Topic{Name: topicName("push-dead")})
	mustSub(t, c, &pb.Subscription{Name: subName("push-sub"), Topic: topicName("push"),
		PushConfig:       &pb.PushConfig{PushEndpoint: ep.srv.URL + "/events"},
		DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: topicName("push-dead"), MaxDeliveryAttempts: 5}})
	ids := publish(t, c, topicName("push"), &pubsub.Message{Data: []byte(`{"sku":"S1"}`), Attributes: map[string]string{"kind": "adjust"}})

	eventually(t, 10*time.Second, "two push requests", func() bool { return len(ep.requests()) >= 2 })
	time.Sleep(300 * time.Millisecond) // a redelivery after the 204 would show up here
	got := ep.requests()
	if len(got) != 2 {
		t.Fatalf("%d push requests, want 2 (a 500, then a 204 that acked)", len(got))
	}
	for i, r := range got {
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d Content-Type %q", i, ct)
		}
		var env struct {
			Message struct {
				Attributes  map[string]string `json:"attributes"`
				Data        string            `json:"data"`
				MessageID   string            `json:"messageId"`
				MessageID2  string            `json:"message_id"`
				PublishTime string            `json:"publishTime"`
			} `json:"message"`
			Subscription    string `json:"subscription"`
			DeliveryAttempt int    `json:"deliveryAttempt"`
		}
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatalf("request %d body %s: %v", i, r.body, err)
		}
		data, _ := base64.StdEncoding.DecodeString(env.Message.Data)
		if string(data) != `{"sku":"S1"}` || env.Message.Attributes["kind"] != "adjust" ||
			env.Message.MessageID != ids[0] || env.Message.MessageID2 != ids[0] ||
			env.Subscription != subName("push-sub") || env.DeliveryAttempt != i+1 {
			t.Errorf("request %d envelope = %s", i, r.body)
		}
		if _, err := time.Parse(time.RFC3339Nano, env.Message.PublishTime); err != nil {
			t.Errorf("request %d publishTime: %v", i, err)
		}
	}

	// Back to pull: ModifyPushConfig with an empty config.
	if err := c.SubscriptionAdminClient.ModifyPushConfig(testCtx(t), &pb.ModifyPushConfigRequest{Subscription: subName("push-sub"), PushConfig: &pb.PushConfig{}}); err != nil {
		t.Fatalf("ModifyPushConfig: %v", err)
	}
	publish(t, c, topicName("push"), &pubsub.Message{Data: []byte("pulled")})
	if m := pullUntil(t, c, subName("push-sub"), 1, 5*time.Second); string(m[0].Message.Data) != "pulled" {
		t.Fatalf("pulled %q", m[0].Message.Data)
	}
	if n := len(ep.requests()); n != 2 {
		t.Fatalf("%d push requests after switching to pull", n)
	}
	_, err := c.SubscriptionAdminClient.CreateSubscription(testCtx(t), &pb.Subscription{Name: subName("bad-push"), Topic: topicName("push"), PushConfig: &pb.PushConfig{PushEndpoint: "ftp://x"}})
	wantCode(t, "push endpoint ftp://x", err, codes.InvalidArgument)
}

// TestPushNoWrapperAndOIDC: the bare data with metadata and attributes as
// headers, and an OIDC token signed by the server's key.
func TestPushNoWrapperAndOIDC(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	ep := newPushEndpoint(t, 200)
	mustTopic(t, c, &pb.Topic{Name: topicName("push")})
	mustSub(t, c, &pb.Subscription{Name: subName("push-sub"), Topic: topicName("push"), PushConfig: &pb.PushConfig{
		PushEndpoint:         ep.srv.URL,
		Wrapper:              &pb.PushConfig_NoWrapper_{NoWrapper: &pb.PushConfig_NoWrapper{WriteMetadata: true}},
		AuthenticationMethod: &pb.PushConfig_OidcToken_{OidcToken: &pb.PushConfig_OidcToken{ServiceAccountEmail: "push@proj.iam.gserviceaccount.com", Audience: "https://svc.example"}},
	}})
	ids := publish(t, c, topicName("push"), &pubsub.Message{Data: []byte("raw body"), Attributes: map[string]string{"Kind": "adjust"}})
	eventually(t, 10*time.Second, "a push request", func() bool { return len(ep.requests()) >= 1 })
	r := ep.requests()[0]
	if string(r.body) != "raw body" {
		t.Errorf("body %q, want the bare data", r.body)
	}
	for k, want := range map[string]string{"Kind": "adjust", "X-Goog-Pubsub-Message-Id": ids[0], "X-Goog-Pubsub-Subscription-Name": subName("push-sub")} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	auth := r.header.Get("Authorization")
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("Authorization %q is not a bearer JWT", auth)
	}
	key, err := b.emu.PushTokenKey()
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		t.Fatalf("token signature: %v", err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	if claims["aud"] != "https://svc.example" || claims["email"] != "push@proj.iam.gserviceaccount.com" {
		t.Fatalf("token claims %v", claims)
	}
}
