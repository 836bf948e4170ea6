package pubsubemu

import (
	"context"
	"maps"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// message is one published message, shared by every subscription holding it.
// pm is immutable once published.
type message struct {
	seq     uint64
	pm      *pb.PubsubMessage
	size    int64
	publish time.Time
	refs    atomic.Int32 // subscriptions (and snapshots) still holding it
	// topic counts size in its retained bytes while refs > 0; set before
	// any subscription holds the message (nil: not counted).
	topic *topic
}

func newMessage(seq uint64, pm *pb.PubsubMessage) *message {
	size := int64(len(pm.Data) + len(pm.OrderingKey))
	for k, v := range pm.Attributes {
		size += int64(len(k) + len(v))
	}
	return &message{seq: seq, pm: pm, size: size, publish: pm.PublishTime.AsTime()}
}

type topic struct {
	name  string
	mu    sync.RWMutex
	proto *pb.Topic
	subs  []*subscription // copy-on-write
	// retained is the bytes of the messages its subscriptions and
	// snapshots hold (Options.MaxTopicBytes).
	retained atomic.Int64
}

// retain counts m, which a subscription is about to hold, in t's retained
// bytes.
func (t *topic) retain(m *message) {
	m.topic = t
	t.retained.Add(m.size)
}

// release uncounts m, which no subscription holds any more.
func (m *message) release() {
	if m.topic != nil {
		m.topic.retained.Add(-m.size)
	}
}

func (g *publisherService) CreateTopic(_ context.Context, in *pb.Topic) (*pb.Topic, error) {
	s := g.s
	if _, _, err := checkName(in.Name, "topics"); err != nil {
		return nil, err
	}
	tp := proto.Clone(in).(*pb.Topic)
	if err := checkTopicRetention(tp); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[tp.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "topic %s already exists", tp.Name)
	}
	if _, err := s.resolveBinding(tp.SchemaSettings); err != nil {
		return nil, err
	}
	if err := s.persistWait(metaPut(kindTopic, tp.Name, tp)); err != nil {
		return nil, status.Errorf(codes.Internal, "create topic: %v", err)
	}
	s.topics[tp.Name] = &topic{name: tp.Name, proto: tp}
	s.log.Debug("topic created", "topic", tp.Name)
	return proto.Clone(tp).(*pb.Topic), nil
}

func checkTopicRetention(tp *pb.Topic) error {
	if d := tp.MessageRetentionDuration; d != nil {
		if dd := d.AsDuration(); dd < minRetention || dd > maxSubRetention {
			return status.Errorf(codes.InvalidArgument, "message_retention_duration %v outside [10m, 31d]", dd)
		}
	}
	return nil
}

func (g *publisherService) GetTopic(_ context.Context, req *pb.GetTopicRequest) (*pb.Topic, error) {
	s := g.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.topics[req.Topic]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "topic %s not found", req.Topic)
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return proto.Clone(t.proto).(*pb.Topic), nil
}

func (g *publisherService) UpdateTopic(_ context.Context, req *pb.UpdateTopicRequest) (*pb.Topic, error) {
	s := g.s
	if req.Topic == nil {
		return nil, status.Error(codes.InvalidArgument, "topic is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[req.Topic.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "topic %s not found", req.Topic.Name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	next := proto.Clone(t.proto).(*pb.Topic)
	if err := applyMask(next, req.Topic, req.UpdateMask, map[string]bool{"name": true}); err != nil {
		return nil, err
	}
	if err := checkTopicRetention(next); err != nil {
		return nil, err
	}
	if _, err := s.resolveBinding(next.SchemaSettings); err != nil {
		return nil, err
	}
	if err := s.persistWait(metaPut(kindTopic, next.Name, next)); err != nil {
		return nil, status.Errorf(codes.Internal, "update topic: %v", err)
	}
	t.proto = next
	return proto.Clone(next).(*pb.Topic), nil
}

// applyMask copies the top-level fields named in mask from src to dst.
func applyMask(dst, src proto.Message, mask *fieldmaskpb.FieldMask, immutable map[string]bool) error {
	if mask == nil || len(mask.Paths) == 0 {
		return status.Error(codes.InvalidArgument, "update_mask is required")
	}
	dr, sr := dst.ProtoReflect(), src.ProtoReflect()
	fields := dr.Descriptor().Fields()
	for _, path := range mask.Paths {
		top := path
		for i := 0; i < len(path); i++ {
			if path[i] == '.' {
				top = path[:i]
				break
			}
		}
		if immutable[top] {
			return status.Errorf(codes.InvalidArgument, "field %s cannot be updated", top)
		}
		fd := fields.ByName(protoreflect.Name(top))
		if fd == nil {
			return status.Errorf(codes.InvalidArgument, "unknown field %s in update_mask", path)
		}
		if sr.Has(fd) {
			dr.Set(fd, sr.Get(fd))
		} else {
			dr.Clear(fd)
		}
	}
	return nil
}

func (g *publisherService) ListTopics(_ context.Context, req *pb.ListTopicsRequest) (*pb.ListTopicsResponse, error) {
	s := g.s
	if err := checkProject(req.Project); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, next := paginate(namesOf(s.topics, req.Project), req.PageToken, req.PageSize)
	resp := &pb.ListTopicsResponse{NextPageToken: next}
	for _, n := range page {
		t := s.topics[n]
		t.mu.RLock()
		resp.Topics = append(resp.Topics, proto.Clone(t.proto).(*pb.Topic))
		t.mu.RUnlock()
	}
	return resp, nil
}

func (g *publisherService) ListTopicSubscriptions(_ context.Context, req *pb.ListTopicSubscriptionsRequest) (*pb.ListTopicSubscriptionsResponse, error) {
	s := g.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.topics[req.Topic]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "topic %s not found", req.Topic)
	}
	t.mu.RLock()
	var names []string
	for _, sub := range t.subs {
		if !sub.snapshot {
			names = append(names, sub.name)
		}
	}
	t.mu.RUnlock()
	sort.Strings(names)
	page, next := paginate(names, req.PageToken, req.PageSize)
	return &pb.ListTopicSubscriptionsResponse{Subscriptions: page, NextPageToken: next}, nil
}

func (g *publisherService) ListTopicSnapshots(_ context.Context, req *pb.ListTopicSnapshotsRequest) (*pb.ListTopicSnapshotsResponse, error) {
	s := g.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.topics[req.Topic]; !ok {
		return nil, status.Errorf(codes.NotFound, "topic %s not found", req.Topic)
	}
	var names []string
	for n, sn := range s.snaps {
		if sn.proto.Topic == req.Topic {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	page, next := paginate(names, req.PageToken, req.PageSize)
	return &pb.ListTopicSnapshotsResponse{Snapshots: page, NextPageToken: next}, nil
}

func (g *publisherService) DeleteTopic(_ context.Context, req *pb.DeleteTopicRequest) (*emptypb.Empty, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[req.Topic]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "topic %s not found", req.Topic)
	}
	ops := append(s.dropPolicyLocked(t.name), metaDelete(kindTopic, t.name))
	// Subscriptions survive with their backlog, detached, as in Pub/Sub.
	t.mu.Lock()
	for _, sub := range t.subs {
		if sub.snapshot {
			continue // a snapshot outlives its topic, and gets nothing new
		}
		sub.mu.Lock()
		sp := proto.Clone(sub.proto).(*pb.Subscription)
		sp.Topic = deletedTopic
		sub.proto = sp
		sub.mu.Unlock()
		ops = append(ops, metaPut(kindSub, sub.name, sp))
	}
	t.subs = nil
	t.mu.Unlock()
	if err := s.persistWait(ops...); err != nil {
		return nil, status.Errorf(codes.Internal, "delete topic: %v", err)
	}
	delete(s.topics, t.name)
	return &emptypb.Empty{}, nil
}

func (g *publisherService) DetachSubscription(_ context.Context, req *pb.DetachSubscriptionRequest) (*pb.DetachSubscriptionResponse, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[req.Subscription]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "subscription %s not found", req.Subscription)
	}
	sub.mu.Lock()
	topicName := sub.proto.Topic
	sp := proto.Clone(sub.proto).(*pb.Subscription)
	sp.Detached = true
	sub.proto = sp
	sub.syncPushLocked()
	sub.purgeLocked()
	ops := append(sub.flushLocked(), metaPut(kindSub, sub.name, sp))
	sub.mu.Unlock()
	if t := s.topics[topicName]; t != nil {
		t.removeSub(sub)
	}
	if err := s.persistWait(ops...); err != nil {
		return nil, status.Errorf(codes.Internal, "detach subscription: %v", err)
	}
	return &pb.DetachSubscriptionResponse{}, nil
}

func (t *topic) removeSub(sub *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make([]*subscription, 0, len(t.subs))
	for _, x := range t.subs {
		if x != sub {
			next = append(next, x)
		}
	}
	t.subs = next
}

func (t *topic) addSub(sub *subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make([]*subscription, 0, len(t.subs)+1)
	next = append(next, t.subs...)
	t.subs = append(next, sub)
}

const (
	attrSchemaName     = "googclient_schemaname"
	attrSchemaEncoding = "googclient_schemaencoding"
	attrSchemaRevision = "googclient_schemarevisionid"
)

func (g *publisherService) Publish(_ context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	s := g.s
	if len(req.Messages) == 0 {
		return nil, status.Error(codes.InvalidArgument, "publish needs at least one message")
	}
	s.mu.RLock()
	t, ok := s.topics[req.Topic]
	if !ok {
		s.mu.RUnlock()
		return nil, status.Errorf(codes.NotFound, "topic %s not found", req.Topic)
	}
	t.mu.RLock()
	ss, subs := t.proto.SchemaSettings, t.subs
	t.mu.RUnlock()
	b, err := s.resolveBinding(ss)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}

	if err := checkPublish(req); err != nil {
		return nil, err
	}
	var revs []string
	if b != nil {
		revs = make([]string, len(req.Messages))
		for i, in := range req.Messages {
			rev, err := b.check(in.Data)
			if err != nil {
				s.log.Debug("publish rejected by schema", "topic", req.Topic, "schema", b.schemaName, "err", err)
				return nil, status.Errorf(codes.InvalidArgument, "invalid data in message %d for schema %s: %v", i, b.schemaName, err)
			}
			revs[i] = rev
		}
	}

	if err := s.checkRetained(t, req); err != nil {
		return nil, err
	}
	now := timestamppb.New(s.now())
	msgs := make([]*message, len(req.Messages))
	ids := make([]string, len(req.Messages))
	for i, in := range req.Messages {
		attrs := in.Attributes
		if b != nil {
			attrs = make(map[string]string, len(in.Attributes)+3)
			maps.Copy(attrs, in.Attributes)
			attrs[attrSchemaName] = b.schemaName
			attrs[attrSchemaEncoding] = encodingNames[b.encoding]
			attrs[attrSchemaRevision] = revs[i]
		}
		seq := s.msgSeq.Add(1)
		ids[i] = strconv.FormatUint(seq, 10)
		msgs[i] = newMessage(seq, &pb.PubsubMessage{
			Data:        in.Data,
			Attributes:  attrs,
			MessageId:   ids[i],
			PublishTime: now,
			OrderingKey: in.OrderingKey,
		})
	}
	if err := s.fanout(t, subs, msgs); err != nil {
		return nil, status.Errorf(codes.Internal, "publish to %s: %v", req.Topic, err)
	}
	return &pb.PublishResponse{MessageIds: ids}, nil
}

// checkRetained refuses a publish that would take t's retained bytes past
// Options.MaxTopicBytes, with RESOURCE_EXHAUSTED as Pub/Sub answers a
// publish past a quota (the official client retries it with backoff until
// its publish timeout). Concurrent publishes are checked one by one, so
// they may pass the cap by what is in flight.
func (s *Server) checkRetained(t *topic, req *pb.PublishRequest) error {
	limit := s.opts.MaxTopicBytes
	if limit <= 0 {
		return nil
	}
	var size int64
	for _, in := range req.Messages {
		size += int64(len(in.Data) + len(in.OrderingKey))
		for k, v := range in.Attributes {
			size += int64(len(k) + len(v))
		}
	}
	if held := t.retained.Load(); held+size > limit {
		s.log.Warn("publish refused: topic backlog at its cap", "topic", t.name, "retained_bytes", held, "request_bytes", size, "max_topic_bytes", limit)
		return status.Errorf(codes.ResourceExhausted,
			"topic %s retains %d bytes of unacknowledged messages; %d more would pass the local Pub/Sub's cap of %d bytes per topic (--max-topic-bytes): ack or seek the subscriptions, or raise the cap",
			t.name, held, size, limit)
	}
	return nil
}

// checkPublish enforces Pub/Sub's documented limits on a publish request
// (https://cloud.google.com/pubsub/quotas#resource_limits).
func checkPublish(req *pb.PublishRequest) error {
	if n := len(req.Messages); n > maxPublishMessages {
		return status.Errorf(codes.InvalidArgument, "publish request holds %d messages, more than %d", n, maxPublishMessages)
	}
	var total int
	for i, in := range req.Messages {
		if len(in.Data) == 0 && len(in.Attributes) == 0 {
			return status.Errorf(codes.InvalidArgument, "message %d has neither data nor attributes", i)
		}
		if n := len(in.Attributes); n > maxAttributes {
			return status.Errorf(codes.InvalidArgument, "message %d has %d attributes, more than %d", i, n, maxAttributes)
		}
		size := len(in.Data) + len(in.OrderingKey)
		for k, v := range in.Attributes {
			if len(k) > maxAttrKeyBytes {
				return status.Errorf(codes.InvalidArgument, "message %d: attribute key %.40q... is %d bytes, more than %d", i, k, len(k), maxAttrKeyBytes)
			}
			if len(v) > maxAttrValueBytes {
				return status.Errorf(codes.InvalidArgument, "message %d: value of attribute %q is %d bytes, more than %d", i, k, len(v), maxAttrValueBytes)
			}
			size += len(k) + len(v)
		}
		if n := len(in.OrderingKey); n > maxOrderingKeyBytes {
			return status.Errorf(codes.InvalidArgument, "message %d: ordering key is %d bytes, more than %d", i, n, maxOrderingKeyBytes)
		}
		if size > maxPublishBytes {
			return status.Errorf(codes.InvalidArgument, "message %d is %d bytes, more than %d", i, size, int(maxPublishBytes))
		}
		total += size
	}
	if total > maxPublishBytes {
		return status.Errorf(codes.InvalidArgument, "publish request of %d bytes exceeds %d", total, int(maxPublishBytes))
	}
	return nil
}

// fanout hands messages to each subscription whose filter accepts them,
// persisting them first when there is a data dir, and counts those held in
// t's retained bytes.
func (s *Server) fanout(t *topic, subs []*subscription, msgs []*message) error {
	if len(subs) == 0 {
		return nil // Pub/Sub drops messages published to a topic with no subscriptions
	}
	perSub := make([][]*message, len(subs))
	for i, sub := range subs {
		if sub.filter == nil {
			perSub[i] = msgs
			for _, m := range msgs {
				m.refs.Add(1)
			}
			continue
		}
		for _, m := range msgs {
			if sub.filter.match(m.pm.Attributes) {
				perSub[i] = append(perSub[i], m)
				m.refs.Add(1)
			}
		}
	}
	if s.store != nil {
		var ops []storeOp
		for _, m := range msgs {
			if m.refs.Load() > 0 {
				ops = append(ops, msgPut(m))
			}
		}
		for i, sub := range subs {
			for _, m := range perSub[i] {
				ops = append(ops, subMsgPut(sub.name, m.seq, false))
			}
		}
		if err := s.persistWait(ops...); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		if m.refs.Load() > 0 { // no subscription has it yet: refs only grew
			t.retain(m)
		}
	}
	for i, sub := range subs {
		if len(perSub[i]) > 0 {
			sub.enqueue(perSub[i])
		}
	}
	return nil
}

// forwardDeadLetters publishes copies of dead-lettered messages to a topic
// with the attributes Pub/Sub adds.
func (s *Server) forwardDeadLetters(subName, topicName string, dead []*subMsg) {
	if len(dead) == 0 {
		return
	}
	s.mu.RLock()
	t := s.topics[topicName]
	var subs []*subscription
	if t != nil {
		t.mu.RLock()
		subs = t.subs
		t.mu.RUnlock()
	}
	s.mu.RUnlock()
	if t == nil {
		s.log.Warn("dead-letter topic not found; messages dropped", "subscription", subName, "topic", topicName, "count", len(dead))
		return
	}
	now := timestamppb.New(s.now())
	msgs := make([]*message, len(dead))
	for i, d := range dead {
		src := d.m.pm
		attrs := make(map[string]string, len(src.Attributes)+5)
		maps.Copy(attrs, src.Attributes)
		attrs["CloudPubSubDeadLetterSourceDeliveryCount"] = strconv.Itoa(int(d.attempts))
		attrs["CloudPubSubDeadLetterSourceSubscription"] = idOf(subName)
		attrs["CloudPubSubDeadLetterSourceSubscriptionProject"] = idOf(projectOf(subName))
		attrs["CloudPubSubDeadLetterSourceTopicPublishTime"] = src.PublishTime.AsTime().Format(time.RFC3339Nano)
		attrs["CloudPubSubDeadLetterSourceDeliveryErrorMessage"] = "max delivery attempts reached"
		seq := s.msgSeq.Add(1)
		msgs[i] = newMessage(seq, &pb.PubsubMessage{
			Data:        src.Data,
			Attributes:  attrs,
			MessageId:   strconv.FormatUint(seq, 10),
			PublishTime: now,
			OrderingKey: src.OrderingKey,
		})
	}
	if err := s.fanout(t, subs, msgs); err != nil {
		s.log.Error("forward dead letters", "subscription", subName, "topic", topicName, "err", err)
	}
}
