package pubsubemu

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options configures a Server.
type Options struct {
	DataDir string           // "" = in memory only
	Now     func() time.Time // nil = time.Now (injectable clock for tests)
	Logger  *slog.Logger     // nil = discard; quiet by default
	// MaxTopicBytes caps the bytes of messages a topic's subscriptions
	// and snapshots retain (data, attributes, ordering key; a message
	// held by several counts once): past it, Publish is refused with
	// RESOURCE_EXHAUSTED, as Pub/Sub refuses a publish past a quota, until
	// subscribers ack or retention drops enough. 0 = DefaultMaxTopicBytes;
	// negative = no cap.
	MaxTopicBytes int64
}

// DefaultMaxTopicBytes is the default of Options.MaxTopicBytes: a backlog
// this large is a stuck subscriber, not a workload of the local stack.
const DefaultMaxTopicBytes = 1 << 30

const (
	defaultAckDeadline = 10 * time.Second
	maxAckDeadline     = 600 * time.Second
	defaultRetention   = 7 * 24 * time.Hour
	defaultExpiration  = 31 * 24 * time.Hour // a subscription without a reader
	minRetention       = 10 * time.Minute
	maxSubRetention    = 31 * 24 * time.Hour
	maxMessagesPerResp = 1000
	maxBytesPerResp    = 10 << 20
	// Resource limits, https://cloud.google.com/pubsub/quotas#resource_limits
	maxPublishBytes     = 10e6 // a publish request's messages, and one message
	maxPublishMessages  = 1000
	maxAttributes       = 100
	maxAttrKeyBytes     = 256
	maxAttrValueBytes   = 1024
	maxOrderingKeyBytes = 1024
	maxAckRequestBytes  = 512 << 10 // Acknowledge and ModifyAckDeadline requests
	tickInterval        = 50 * time.Millisecond
	deletedTopic        = "_deleted-topic_"
	deletedSchema       = "_deleted-schema_"
)

// Server is a running emulator.
type Server struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	lis    net.Listener
	gs     *grpc.Server
	store  *store // nil in memory mode
	bootID string

	mu      sync.RWMutex
	topics  map[string]*topic
	subs    map[string]*subscription
	schemas map[string]*schema
	snaps   map[string]*snapshot
	// IAM policies by resource name
	policies map[string]*iampb.Policy

	msgSeq atomic.Uint64

	pushKeyOnce sync.Once // the key signing push OIDC tokens, made on first use
	pushKeyVal  *rsa.PrivateKey
	pushKeyErr  error

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr ("127.0.0.1:0" for a free port, "localhost:8085" ...)
// and serves in the background.
func Start(addr string, opts Options) (*Server, error) {
	s, err := newServer(opts)
	if err != nil {
		return nil, fmt.Errorf("pubsubemu start: %w", err)
	}
	if opts.DataDir != "" {
		st, err := openStore(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("pubsubemu start: %w", err)
		}
		s.store = st
		if err := s.load(); err != nil {
			_ = st.close()
			return nil, fmt.Errorf("pubsubemu start: load %s: %w", opts.DataDir, err)
		}
	}

	// Message ids start from the wall clock in microseconds, so they stay unique
	// across restarts even without a data dir (Pub/Sub's ids are 16-17 digits too).
	if seed := uint64(time.Now().UnixMicro()); seed > s.msgSeq.Load() {
		s.msgSeq.Store(seed)
	}

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		if s.store != nil {
			_ = s.store.close()
		}
		return nil, fmt.Errorf("pubsubemu start: listen %s: %w", addr, err)
	}
	s.serve(lis)
	s.log.Info("pubsubemu listening", "addr", lis.Addr().String(), "data_dir", opts.DataDir)
	return s, nil
}

// newServer returns an empty server with opts' defaults filled in.
func newServer(opts Options) (*Server, error) {
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		now:      opts.Now,
		topics:   map[string]*topic{},
		subs:     map[string]*subscription{},
		schemas:  map[string]*schema{},
		snaps:    map[string]*snapshot{},
		policies: map[string]*iampb.Policy{},
		stop:     make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case s.opts.MaxTopicBytes == 0:
		s.opts.MaxTopicBytes = DefaultMaxTopicBytes
	case s.opts.MaxTopicBytes < 0:
		s.opts.MaxTopicBytes = 0 // no cap
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("boot id: %w", err)
	}
	s.bootID = hex.EncodeToString(b[:])
	return s, nil
}

// serve registers the gRPC services, starts the push subscriptions restored
// from the data dir, and serves lis and the ticker in the background.
func (s *Server) serve(lis net.Listener) {
	s.lis = lis
	s.gs = grpc.NewServer(
		grpc.MaxRecvMsgSize(64<<20),
		grpc.MaxSendMsgSize(64<<20),
	)
	pb.RegisterPublisherServer(s.gs, &publisherService{s: s})
	pb.RegisterSubscriberServer(s.gs, &subscriberService{s: s})
	pb.RegisterSchemaServiceServer(s.gs, &schemaService{s: s})
	iampb.RegisterIAMPolicyServer(s.gs, &iamService{s: s})

	s.mu.RLock()
	for _, sub := range s.subs {
		sub.mu.Lock()
		sub.syncPushLocked()
		sub.mu.Unlock()
	}
	s.mu.RUnlock()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("pubsubemu serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.ticker()
	}()
}

// Addr returns host:port, usable as PUBSUB_EMULATOR_HOST.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops accepting, ends streams, and flushes and closes the data dir.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		done := make(chan struct{})
		go func() {
			s.gs.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.gs.Stop()
			<-done
		}
		s.wg.Wait()
		if s.store != nil {
			if err := s.store.close(); err != nil {
				s.closeErr = fmt.Errorf("pubsubemu close: %w", err)
			}
		}
		s.log.Info("pubsubemu stopped", "addr", s.lis.Addr().String(), "err", s.closeErr)
	})
	return s.closeErr
}

// ticker expires ack deadlines, releases retry backoffs and drops messages
// past retention. It polls the (possibly injected) clock.
func (s *Server) ticker() {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		now := s.now()
		s.mu.RLock()
		subs := make([]*subscription, 0, len(s.subs))
		for _, sub := range s.subs {
			subs = append(subs, sub)
		}
		expired := false
		for _, sn := range s.snaps {
			subs = append(subs, sn.held)
			expired = expired || !sn.proto.ExpireTime.AsTime().After(now)
		}
		s.mu.RUnlock()
		if expired {
			s.expireSnapshots(now)
		}
		for _, sub := range subs {
			sub.tick(now)
		}
	}
}

// dropPolicyLocked forgets the IAM policy of a deleted resource (s.mu held).
func (s *Server) dropPolicyLocked(resource string) []storeOp {
	if _, ok := s.policies[resource]; !ok {
		return nil
	}
	delete(s.policies, resource)
	return []storeOp{metaDelete(kindPolicy, resource)}
}

// persist queues store writes; it is a no-op in memory mode.
func (s *Server) persist(ops ...storeOp) {
	if s.store != nil {
		s.store.submit(ops, false)
	}
}

// persistWait queues store writes and waits until they are committed.
func (s *Server) persistWait(ops ...storeOp) error {
	if s.store == nil {
		return nil
	}
	return s.store.submit(ops, true)
}

type publisherService struct {
	pb.UnimplementedPublisherServer
	s *Server
}

type subscriberService struct {
	pb.UnimplementedSubscriberServer
	s *Server
}

type schemaService struct {
	pb.UnimplementedSchemaServiceServer
	s *Server
}

// Resource names.

func checkName(name, kind string) (project, id string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != kind || parts[1] == "" || parts[3] == "" {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid %s name %q: want projects/{project}/%s/{id}", strings.TrimSuffix(kind, "s"), name, kind)
	}
	id = parts[3]
	if why := badID(id); why != "" {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid %s id %q in %q: %s", strings.TrimSuffix(kind, "s"), id, name, why)
	}
	return parts[1], id, nil
}

// badID says why id is not a valid Pub/Sub resource id, or "" if it is:
// https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names — it
// starts with a letter, holds only letters, digits and - _ . ~ + %, is 3 to
// 255 characters long and does not start with "goog".
func badID(id string) string {
	switch {
	case len(id) < 3 || len(id) > 255:
		return fmt.Sprintf("length %d outside [3, 255]", len(id))
	case !isLetter(id[0]):
		return "must start with a letter"
	case strings.HasPrefix(id, "goog"):
		return `must not start with "goog"`
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && !strings.ContainsRune("-_.~+%", rune(c)) {
			return fmt.Sprintf("character %q at %d is not one of [A-Za-z0-9-_.~+%%]", c, i)
		}
	}
	return ""
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func checkProject(p string) error {
	parts := strings.Split(p, "/")
	if len(parts) != 2 || parts[0] != "projects" || parts[1] == "" {
		return status.Errorf(codes.InvalidArgument, "invalid project %q: want projects/{project}", p)
	}
	return nil
}

func projectOf(name string) string {
	parts := strings.SplitN(name, "/", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + "/" + parts[1]
}

func idOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// paginate returns the slice of sorted names for a page token and size.
// namesOf returns the sorted names in m (topics or subscriptions) that
// belong to project.
func namesOf[V any](m map[string]V, project string) []string {
	var names []string
	for n := range m {
		if projectOf(n) == project {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func paginate(names []string, token string, size int32) (page []string, next string) {
	start := 0
	if token != "" {
		for i, n := range names {
			if n > token {
				start = i
				break
			}
			start = len(names)
		}
	}
	n := int(size)
	if n <= 0 || n > 1000 {
		n = 1000
	}
	end := start + n
	if end >= len(names) {
		return names[start:], ""
	}
	return names[start:end], names[end-1]
}

// topicLocked returns the topic called name, or NotFound; the caller
// holds s.mu.
func (s *Server) topicLocked(name string) (*topic, error) {
	t, ok := s.topics[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "topic %s not found", name)
	}
	return t, nil
}

// subLocked returns the subscription called name, or NotFound; the caller
// holds s.mu.
func (s *Server) subLocked(name string) (*subscription, error) {
	sub, ok := s.subs[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "subscription %s not found", name)
	}
	return sub, nil
}
