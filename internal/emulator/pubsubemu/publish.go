package pubsubemu

import (
	"context"
	"maps"
	"strconv"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

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
	t, err := s.topicLocked(req.Topic)
	if err != nil {
		s.mu.RUnlock()
		return nil, err
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
