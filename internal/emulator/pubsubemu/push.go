package pubsubemu

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Push delivery (https://cloud.google.com/pubsub/docs/push): each message is
// POSTed to the endpoint, wrapped in the JSON envelope Pub/Sub sends, or with
// no_wrapper as the bare data (metadata in x-goog-pubsub-* headers and
// attributes as headers when write_metadata is set,
// https://cloud.google.com/pubsub/docs/payload-unwrapping). A 102, 200, 201,
// 202 or 204 answer acknowledges it; anything else, or no answer within the
// ack deadline, is a nack, redelivered under the retry policy and dead-letter
// policy. After a failure the subscription's deliveries slow down with
// exponential backoff from 100 ms to 60 s, reset by a success (push backoff).
// With oidc_token set, requests carry "Authorization: Bearer <JWT>" signed
// by the server's own RSA key (Server.PushTokenKey), not by Google.

const (
	pushConcurrency = 32
	pushMinBackoff  = 100 * time.Millisecond
	pushMaxBackoff  = 60 * time.Second
)

func checkPushConfig(pc *pb.PushConfig) error {
	if pc == nil || pc.PushEndpoint == "" {
		return nil
	}
	u, err := url.Parse(pc.PushEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return status.Errorf(codes.InvalidArgument, "invalid push endpoint %q: want an http or https URL", pc.PushEndpoint)
	}
	if tok := pc.GetOidcToken(); tok != nil && tok.ServiceAccountEmail == "" {
		return status.Error(codes.InvalidArgument, "oidc_token needs a service_account_email")
	}
	return nil
}

// pusher delivers one push subscription; stop ends it.
type pusher struct {
	stop     chan struct{}
	done     chan struct{}
	failures atomic.Int32
}

// syncPushLocked starts or stops the subscription's pusher to match its
// push config (sub.mu held).
func (sub *subscription) syncPushLocked() {
	want := !sub.snapshot && !sub.deleted && sub.proto.GetPushConfig().GetPushEndpoint() != "" && !sub.proto.Detached
	switch {
	case want && sub.push == nil:
		p := &pusher{stop: make(chan struct{}), done: make(chan struct{})}
		sub.push = p
		s := sub.srv
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(p.done)
			s.pushLoop(sub, p)
		}()
	case !want && sub.push != nil:
		close(sub.push.stop)
		sub.push = nil
		sub.signalLocked()
	}
}

func (s *Server) pushLoop(sub *subscription, p *pusher) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
		case <-s.stop:
		}
		cancel()
	}()
	client := &http.Client{}
	sem := make(chan struct{}, pushConcurrency)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		if f := p.failures.Load(); f > 0 {
			backoff := pushMinBackoff << min(f-1, 20)
			select {
			case <-time.After(min(backoff, pushMaxBackoff)):
			case <-ctx.Done():
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		sub.mu.Lock()
		if sub.push != p {
			sub.mu.Unlock()
			return
		}
		now := s.now()
		sub.expireLocked(now)
		msgs := sub.takeLocked(1, maxBytesPerResp, nil, now)
		ch, pc, deadline := sub.notify, sub.proto.PushConfig, sub.ackDeadline
		sub.unlock()
		if len(msgs) == 0 {
			<-sem
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
			continue
		}
		inflight.Add(1)
		go func(rm *pb.ReceivedMessage) {
			defer inflight.Done()
			defer func() { <-sem }()
			err := s.pushOne(ctx, client, sub.name, pc, rm, deadline)
			if err == nil {
				p.failures.Store(0)
				sub.ackIDs([]string{rm.AckId})
				return
			}
			p.failures.Add(1)
			s.log.Debug("push failed", "subscription", sub.name, "endpoint", pc.PushEndpoint, "message", rm.Message.MessageId, "err", err)
			if ctx.Err() == nil {
				sub.modAck([]string{rm.AckId}, 0)
			}
		}(msgs[0])
	}
}

// pushEnvelope is the JSON body of a wrapped push request.
type pushEnvelope struct {
	Message         pushMessage `json:"message"`
	Subscription    string      `json:"subscription"`
	DeliveryAttempt int32       `json:"deliveryAttempt,omitempty"`
}

type pushMessage struct {
	Attributes   map[string]string `json:"attributes,omitempty"`
	Data         []byte            `json:"data,omitempty"` // base64, as encoding/json writes []byte
	MessageID    string            `json:"messageId"`
	MessageID2   string            `json:"message_id"`
	PublishTime  string            `json:"publishTime"`
	PublishTime2 string            `json:"publish_time"`
	OrderingKey  string            `json:"orderingKey,omitempty"`
}

// pushOne makes one push request; nil means the endpoint acknowledged.
func (s *Server) pushOne(ctx context.Context, client *http.Client, subName string, pc *pb.PushConfig, rm *pb.ReceivedMessage, deadline time.Duration) error {
	m := rm.Message
	published := m.PublishTime.AsTime().UTC().Format(time.RFC3339Nano)
	var body []byte
	header := http.Header{}
	if nw := pc.GetNoWrapper(); nw != nil {
		body = m.Data
		if nw.WriteMetadata {
			header.Set("x-goog-pubsub-subscription-name", subName)
			header.Set("x-goog-pubsub-message-id", m.MessageId)
			header.Set("x-goog-pubsub-publish-time", published)
			if m.OrderingKey != "" {
				header.Set("x-goog-pubsub-ordering-key", m.OrderingKey)
			}
			if rm.DeliveryAttempt > 0 {
				header.Set("x-goog-pubsub-delivery-attempt", strconv.Itoa(int(rm.DeliveryAttempt)))
			}
			for k, v := range m.Attributes {
				header.Set(k, v)
			}
		}
	} else {
		env := pushEnvelope{
			Message: pushMessage{
				Attributes: m.Attributes, Data: m.Data,
				MessageID: m.MessageId, MessageID2: m.MessageId,
				PublishTime: published, PublishTime2: published,
				OrderingKey: m.OrderingKey,
			},
			Subscription:    subName,
			DeliveryAttempt: rm.DeliveryAttempt,
		}
		var err error
		if body, err = json.Marshal(env); err != nil {
			return fmt.Errorf("encode push body: %w", err)
		}
		header.Set("Content-Type", "application/json")
	}
	if tok := pc.GetOidcToken(); tok != nil {
		aud := tok.Audience
		if aud == "" {
			aud = pc.PushEndpoint
		}
		jwt, err := s.pushToken(tok.ServiceAccountEmail, aud)
		if err != nil {
			return err
		}
		header.Set("Authorization", "Bearer "+jwt)
	}
	rctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, pc.PushEndpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push request to %s: %w", pc.PushEndpoint, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("push to %s: %w", pc.PushEndpoint, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	switch resp.StatusCode {
	case 102, 200, 201, 202, 204:
		return nil
	}
	return fmt.Errorf("push to %s: HTTP %d", pc.PushEndpoint, resp.StatusCode)
}

// PushTokenKey is the public key that signs the OIDC tokens of push requests
// (RS256), for a local endpoint that wants to verify them.
func (s *Server) PushTokenKey() (*rsa.PublicKey, error) {
	k, err := s.pushKey()
	if err != nil {
		return nil, err
	}
	return &k.PublicKey, nil
}

func (s *Server) pushKey() (*rsa.PrivateKey, error) {
	s.pushKeyOnce.Do(func() {
		s.pushKeyVal, s.pushKeyErr = rsa.GenerateKey(rand.Reader, 2048)
		if s.pushKeyErr != nil {
			s.pushKeyErr = fmt.Errorf("push token key: %w", s.pushKeyErr)
		}
	})
	return s.pushKeyVal, s.pushKeyErr
}

// pushToken makes the OIDC token Pub/Sub attaches to a push request: an
// RS256 JWT with the audience, the service account as email and subject,
// issued by accounts.google.com, valid for an hour.
func (s *Server) pushToken(email, aud string) (string, error) {
	key, err := s.pushKey()
	if err != nil {
		return "", err
	}
	now := s.now()
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "pubsubemu"})
	claims, _ := json.Marshal(map[string]any{
		"aud": aud, "azp": email, "email": email, "email_verified": true, "sub": email,
		"iss": "https://accounts.google.com", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign push token: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}
