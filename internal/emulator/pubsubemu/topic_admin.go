package pubsubemu

import (
	"context"
	"sort"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

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
	t, err := s.topicLocked(req.Topic)
	if err != nil {
		return nil, err
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
	t, err := s.topicLocked(req.Topic.Name)
	if err != nil {
		return nil, err
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
	t, err := s.topicLocked(req.Topic)
	if err != nil {
		return nil, err
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
	if _, err := s.topicLocked(req.Topic); err != nil {
		return nil, err
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
	t, err := s.topicLocked(req.Topic)
	if err != nil {
		return nil, err
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
	sub, err := s.subLocked(req.Subscription)
	if err != nil {
		return nil, err
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
