package pubsubemu

import (
	"context"
	"slices"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Snapshots (https://cloud.google.com/pubsub/docs/replay-overview): a
// snapshot keeps the messages unacknowledged in its subscription when it was
// made, and every message published to the topic afterwards, until it
// expires: 7 days after the publish time of the oldest message it captured
// (Pub/Sub refuses one that would expire within the hour). Seeking a
// subscription to it makes exactly those messages unacknowledged.
//
// A snapshot is held as a subscription that never delivers: it sits on its
// topic's fan-out list (without filter), so it gets new messages, is
// persisted in its own bucket and drops messages past the 7-day retention
// like any subscription.

const (
	kindSnapshot      = "n/"
	snapshotLifetime  = 7 * 24 * time.Hour
	snapshotMinExpiry = time.Hour
)

type snapshot struct {
	proto *pb.Snapshot
	held  *subscription // the messages it keeps
}

func (s *Server) newSnapshotHolder(sp *pb.Snapshot) (*subscription, error) {
	h, err := s.newSubscription(&pb.Subscription{Name: sp.Name, Topic: sp.Topic})
	if err != nil {
		return nil, err
	}
	h.snapshot = true
	h.retention = snapshotLifetime
	return h, nil
}

func (g *subscriberService) CreateSnapshot(_ context.Context, req *pb.CreateSnapshotRequest) (*pb.Snapshot, error) {
	s := g.s
	if _, _, err := checkName(req.Name, "snapshots"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.snaps[req.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "snapshot %s already exists", req.Name)
	}
	sub, err := s.subLocked(req.Subscription)
	if err != nil {
		return nil, err
	}
	sub.mu.Lock()
	topicName := sub.proto.Topic
	sub.mu.Unlock()
	t, ok := s.topics[topicName]
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "the topic of subscription %s has been deleted", req.Subscription)
	}
	now := s.now()
	sp := &pb.Snapshot{Name: req.Name, Topic: topicName, Labels: req.Labels}
	h, err := s.newSnapshotHolder(sp)
	if err != nil {
		return nil, err
	}
	// Join the fan-out first, then copy the backlog: a message published in
	// between is in both and kept once.
	t.addSub(h)
	sub.mu.Lock()
	var backlog []*message
	for _, sm := range sub.allLocked() {
		if sm.state != stAcked {
			backlog = append(backlog, sm.m)
		}
	}
	sub.mu.Unlock()
	h.mu.Lock()
	oldest := now
	h.ready.each(func(sm *subMsg) { backlog = append(backlog, sm.m) })
	slices.SortFunc(backlog, func(a, b *message) int { return compareSeq(a.seq, b.seq) })
	backlog = slices.CompactFunc(backlog, func(a, b *message) bool { return a.seq == b.seq })
	held := map[uint64]bool{}
	h.ready.each(func(sm *subMsg) { held[sm.m.seq] = true })
	h.ready.reset()
	for _, m := range backlog {
		if !held[m.seq] {
			m.refs.Add(1)
			if s.store != nil {
				h.ops = append(h.ops, subMsgPut(h.name, m.seq, false))
			}
		}
		h.ready.push(&subMsg{m: m, hidx: -1})
		if m.publish.Before(oldest) {
			oldest = m.publish
		}
	}
	expire := oldest.Add(snapshotLifetime)
	ops := append(h.flushLocked(), metaPut(kindSnapshot, sp.Name, sp))
	h.mu.Unlock()
	if expire.Sub(now) < snapshotMinExpiry {
		s.persist(s.dropHolder(t, h)...)
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot %s would expire at %s, within an hour: the oldest unacked message of %s is too old", req.Name, expire.Format(time.RFC3339), req.Subscription)
	}
	sp.ExpireTime = timestamppb.New(expire)
	ops[len(ops)-1] = metaPut(kindSnapshot, sp.Name, sp)
	if err := s.persistWait(ops...); err != nil {
		s.persist(s.dropHolder(t, h)...)
		return nil, status.Errorf(codes.Internal, "create snapshot: %v", err)
	}
	s.snaps[sp.Name] = &snapshot{proto: sp, held: h}
	return proto.Clone(sp).(*pb.Snapshot), nil
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dropHolder detaches a snapshot's holder from its topic and frees what it
// holds; it returns the store writes to make.
func (s *Server) dropHolder(t *topic, h *subscription) []storeOp {
	if t != nil {
		t.removeSub(h)
	}
	h.mu.Lock()
	h.deleted = true
	h.purgeLocked()
	ops := append(h.flushLocked(), storeOp{kind: opDeleteBucket, bucket: subBucket(h.name)})
	h.mu.Unlock()
	return ops
}

func (g *subscriberService) GetSnapshot(_ context.Context, req *pb.GetSnapshotRequest) (*pb.Snapshot, error) {
	s := g.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	sn, ok := s.snaps[req.Snapshot]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "snapshot %s not found", req.Snapshot)
	}
	return proto.Clone(sn.proto).(*pb.Snapshot), nil
}

func (g *subscriberService) ListSnapshots(_ context.Context, req *pb.ListSnapshotsRequest) (*pb.ListSnapshotsResponse, error) {
	s := g.s
	if err := checkProject(req.Project); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, next := paginate(namesOf(s.snaps, req.Project), req.PageToken, req.PageSize)
	resp := &pb.ListSnapshotsResponse{NextPageToken: next}
	for _, n := range page {
		resp.Snapshots = append(resp.Snapshots, proto.Clone(s.snaps[n].proto).(*pb.Snapshot))
	}
	return resp, nil
}

func (g *subscriberService) UpdateSnapshot(_ context.Context, req *pb.UpdateSnapshotRequest) (*pb.Snapshot, error) {
	s := g.s
	if req.Snapshot == nil {
		return nil, status.Error(codes.InvalidArgument, "snapshot is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, ok := s.snaps[req.Snapshot.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "snapshot %s not found", req.Snapshot.Name)
	}
	next := proto.Clone(sn.proto).(*pb.Snapshot)
	if err := applyMask(next, req.Snapshot, req.UpdateMask, map[string]bool{"name": true, "topic": true}); err != nil {
		return nil, err
	}
	if next.ExpireTime == nil {
		return nil, status.Error(codes.InvalidArgument, "expire_time cannot be cleared")
	}
	if err := s.persistWait(metaPut(kindSnapshot, next.Name, next)); err != nil {
		return nil, status.Errorf(codes.Internal, "update snapshot: %v", err)
	}
	sn.proto = next
	return proto.Clone(next).(*pb.Snapshot), nil
}

func (g *subscriberService) DeleteSnapshot(_ context.Context, req *pb.DeleteSnapshotRequest) (*emptypb.Empty, error) {
	s := g.s
	s.mu.Lock()
	sn, ok := s.snaps[req.Snapshot]
	if !ok {
		s.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "snapshot %s not found", req.Snapshot)
	}
	if err := s.deleteSnapshotLocked(sn); err != nil {
		s.mu.Unlock()
		return nil, status.Errorf(codes.Internal, "delete snapshot: %v", err)
	}
	s.mu.Unlock()
	return &emptypb.Empty{}, nil
}

// deleteSnapshotLocked needs s.mu held for writing.
func (s *Server) deleteSnapshotLocked(sn *snapshot) error {
	delete(s.snaps, sn.proto.Name)
	ops := append(s.dropHolder(s.topics[sn.proto.Topic], sn.held), s.dropPolicyLocked(sn.proto.Name)...)
	return s.persistWait(append(ops, metaDelete(kindSnapshot, sn.proto.Name))...)
}

// expireSnapshots deletes snapshots past their expire time.
func (s *Server) expireSnapshots(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sn := range s.snaps {
		if !sn.proto.ExpireTime.AsTime().After(now) {
			if err := s.deleteSnapshotLocked(sn); err != nil {
				s.log.Error("expire snapshot", "snapshot", sn.proto.Name, "err", err)
			}
		}
	}
}

// seekSnapshot makes the snapshot's messages, and only those, unacknowledged
// in sub.
func (s *Server) seekSnapshot(sub *subscription, name string) error {
	s.mu.RLock()
	sn, ok := s.snaps[name]
	var topicName string
	var held []*message
	if ok {
		topicName = sn.proto.Topic
		sn.held.mu.Lock()
		sn.held.ready.each(func(sm *subMsg) { held = append(held, sm.m) })
		sn.held.mu.Unlock()
	}
	s.mu.RUnlock()
	if !ok {
		return status.Errorf(codes.NotFound, "snapshot %s not found", name)
	}
	sub.mu.Lock()
	subTopic := sub.proto.Topic
	sub.mu.Unlock()
	if subTopic != topicName {
		return status.Errorf(codes.InvalidArgument, "snapshot %s is of topic %s, subscription %s of topic %s", name, topicName, sub.name, subTopic)
	}
	in := make(map[uint64]*message, len(held))
	for _, m := range held {
		in[m.seq] = m
	}
	sub.mu.Lock()
	sub.seekLocked(s.now(), func(m *message) bool { return in[m.seq] != nil }, held)
	sub.unlock()
	return nil
}
