package pubsubemu

import (
	"context"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

func (g *subscriberService) CreateSubscription(_ context.Context, in *pb.Subscription) (*pb.Subscription, error) {
	s := g.s
	if _, _, err := checkName(in.Name, "subscriptions"); err != nil {
		return nil, err
	}
	sp := proto.Clone(in).(*pb.Subscription)
	if err := checkSubscription(sp); err != nil {
		return nil, err
	}
	if sp.AckDeadlineSeconds == 0 {
		sp.AckDeadlineSeconds = int32(defaultAckDeadline / time.Second)
	}
	if sp.MessageRetentionDuration == nil {
		sp.MessageRetentionDuration = durationpb.New(defaultRetention)
	}
	if sp.ExpirationPolicy == nil { // Pub/Sub's default: 31 days without a reader
		sp.ExpirationPolicy = &pb.ExpirationPolicy{Ttl: durationpb.New(defaultExpiration)}
	}
	if sp.DeadLetterPolicy != nil && sp.DeadLetterPolicy.MaxDeliveryAttempts == 0 {
		sp.DeadLetterPolicy.MaxDeliveryAttempts = defaultMaxDeliveryAttempts
	}
	sp.State = pb.Subscription_ACTIVE
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sp.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "subscription %s already exists", sp.Name)
	}
	t, err := s.topicLocked(sp.Topic)
	if err != nil {
		return nil, err
	}
	if dlp := sp.DeadLetterPolicy; dlp != nil {
		if _, ok := s.topics[dlp.DeadLetterTopic]; !ok {
			return nil, status.Errorf(codes.NotFound, "dead-letter topic %s not found", dlp.DeadLetterTopic)
		}
	}
	sub, err := s.newSubscription(sp)
	if err != nil {
		return nil, err
	}
	if err := s.persistWait(metaPut(kindSub, sp.Name, sp)); err != nil {
		return nil, status.Errorf(codes.Internal, "create subscription: %v", err)
	}
	s.subs[sp.Name] = sub
	t.addSub(sub)
	sub.mu.Lock()
	sub.syncPushLocked()
	sub.mu.Unlock()
	s.log.Debug("subscription created", "subscription", sp.Name, "topic", sp.Topic)
	return proto.Clone(sp).(*pb.Subscription), nil
}

func checkSubscription(sp *pb.Subscription) error {
	if a := sp.AckDeadlineSeconds; a < 0 || a > int32(maxAckDeadline/time.Second) {
		return status.Errorf(codes.InvalidArgument, "ack_deadline_seconds %d outside [1, 600]", a)
	}
	if d := sp.MessageRetentionDuration; d != nil {
		if dd := d.AsDuration(); dd < minRetention || dd > defaultRetention {
			return status.Errorf(codes.InvalidArgument, "message_retention_duration %v outside [10m, 7d]", dd)
		}
	}
	if dlp := sp.DeadLetterPolicy; dlp != nil {
		if _, _, err := checkName(dlp.DeadLetterTopic, "topics"); err != nil {
			return err
		}
		if n := dlp.MaxDeliveryAttempts; n != 0 && (n < 5 || n > 100) {
			return status.Errorf(codes.InvalidArgument, "max_delivery_attempts %d outside [5, 100]", n)
		}
	}
	if rp := sp.RetryPolicy; rp != nil {
		lo, hi := defaultMinBackoff, defaultMaxBackoff
		if rp.MinimumBackoff != nil {
			lo = rp.MinimumBackoff.AsDuration()
		}
		if rp.MaximumBackoff != nil {
			hi = rp.MaximumBackoff.AsDuration()
		}
		if lo < 0 || hi > defaultMaxBackoff || lo > hi {
			return status.Error(codes.InvalidArgument, "retry_policy backoffs must satisfy 0 <= minimum <= maximum <= 600s")
		}
	}
	return checkPushConfig(sp.PushConfig)
}

func (s *Server) findSub(name string) (*subscription, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sub, err := s.subLocked(name)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

func (g *subscriberService) GetSubscription(_ context.Context, req *pb.GetSubscriptionRequest) (*pb.Subscription, error) {
	sub, err := g.s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return proto.Clone(sub.proto).(*pb.Subscription), nil
}

func (g *subscriberService) UpdateSubscription(_ context.Context, req *pb.UpdateSubscriptionRequest) (*pb.Subscription, error) {
	s := g.s
	if req.Subscription == nil {
		return nil, status.Error(codes.InvalidArgument, "subscription is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, err := s.subLocked(req.Subscription.Name)
	if err != nil {
		return nil, err
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	next := proto.Clone(sub.proto).(*pb.Subscription)
	immutable := map[string]bool{"name": true, "topic": true, "enable_message_ordering": true, "filter": true}
	if err := applyMask(next, req.Subscription, req.UpdateMask, immutable); err != nil {
		return nil, err
	}
	if err := checkSubscription(next); err != nil {
		return nil, err
	}
	if next.AckDeadlineSeconds == 0 {
		next.AckDeadlineSeconds = int32(defaultAckDeadline / time.Second)
	}
	if next.MessageRetentionDuration == nil {
		next.MessageRetentionDuration = durationpb.New(defaultRetention)
	}
	if dlp := next.DeadLetterPolicy; dlp != nil {
		if _, ok := s.topics[dlp.DeadLetterTopic]; !ok {
			return nil, status.Errorf(codes.NotFound, "dead-letter topic %s not found", dlp.DeadLetterTopic)
		}
		if dlp.MaxDeliveryAttempts == 0 {
			dlp.MaxDeliveryAttempts = defaultMaxDeliveryAttempts
		}
	}
	if err := s.persistWait(metaPut(kindSub, next.Name, next)); err != nil {
		return nil, status.Errorf(codes.Internal, "update subscription: %v", err)
	}
	sub.configureLocked(next)
	sub.syncPushLocked()
	return proto.Clone(next).(*pb.Subscription), nil
}

func (g *subscriberService) ListSubscriptions(_ context.Context, req *pb.ListSubscriptionsRequest) (*pb.ListSubscriptionsResponse, error) {
	s := g.s
	if err := checkProject(req.Project); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, next := paginate(namesOf(s.subs, req.Project), req.PageToken, req.PageSize)
	resp := &pb.ListSubscriptionsResponse{NextPageToken: next}
	for _, n := range page {
		sub := s.subs[n]
		sub.mu.Lock()
		resp.Subscriptions = append(resp.Subscriptions, proto.Clone(sub.proto).(*pb.Subscription))
		sub.mu.Unlock()
	}
	return resp, nil
}

func (g *subscriberService) DeleteSubscription(_ context.Context, req *pb.DeleteSubscriptionRequest) (*emptypb.Empty, error) {
	s := g.s
	s.mu.Lock()
	sub, err := s.subLocked(req.Subscription)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	delete(s.subs, req.Subscription)
	t := s.topics[sub.proto.Topic]
	policyOps := s.dropPolicyLocked(req.Subscription)
	s.mu.Unlock()
	if t != nil {
		t.removeSub(sub)
	}
	sub.mu.Lock()
	sub.deleted = true
	sub.syncPushLocked()
	sub.purgeLocked()
	sub.signalLocked()
	ops := append(sub.flushLocked(), metaDelete(kindSub, sub.name), storeOp{kind: opDeleteBucket, bucket: subBucket(sub.name)})
	ops = append(ops, policyOps...)
	sub.mu.Unlock()
	if err := s.persistWait(ops...); err != nil {
		return nil, status.Errorf(codes.Internal, "delete subscription: %v", err)
	}
	return &emptypb.Empty{}, nil
}

func (g *subscriberService) Seek(_ context.Context, req *pb.SeekRequest) (*pb.SeekResponse, error) {
	s := g.s
	sub, err := s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	var t time.Time
	switch target := req.Target.(type) {
	case *pb.SeekRequest_Time:
		t = target.Time.AsTime()
	case *pb.SeekRequest_Snapshot:
		if err := s.seekSnapshot(sub, target.Snapshot); err != nil {
			return nil, err
		}
		return &pb.SeekResponse{}, nil
	default:
		return nil, status.Error(codes.InvalidArgument, "seek needs a time or a snapshot")
	}
	sub.mu.Lock()
	sub.seekLocked(s.now(), func(m *message) bool { return !m.publish.Before(t) }, nil)
	sub.unlock()
	return &pb.SeekResponse{}, nil
}

func (g *subscriberService) ModifyPushConfig(_ context.Context, req *pb.ModifyPushConfigRequest) (*emptypb.Empty, error) {
	s := g.s
	if err := checkPushConfig(req.PushConfig); err != nil {
		return nil, err
	}
	sub, err := s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	next := proto.Clone(sub.proto).(*pb.Subscription)
	next.PushConfig = proto.Clone(req.GetPushConfig()).(*pb.PushConfig) // empty = pull
	if req.PushConfig == nil {
		next.PushConfig = &pb.PushConfig{}
	}
	if err := s.persistWait(metaPut(kindSub, next.Name, next)); err != nil {
		return nil, status.Errorf(codes.Internal, "modify push config: %v", err)
	}
	sub.proto = next
	sub.syncPushLocked()
	return &emptypb.Empty{}, nil
}
