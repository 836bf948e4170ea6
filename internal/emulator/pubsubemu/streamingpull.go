package pubsubemu

import (
	"errors"
	"io"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func (g *subscriberService) StreamingPull(ss pb.Subscriber_StreamingPullServer) error {
	s := g.s
	first, err := ss.Recv()
	if err != nil {
		return err
	}
	sub, err := s.findSub(first.Subscription)
	if err != nil {
		return err
	}
	sub.mu.Lock()
	detached := sub.proto.Detached
	sub.mu.Unlock()
	if detached {
		return status.Errorf(codes.FailedPrecondition, "subscription %s is detached", sub.name)
	}
	if d := first.StreamAckDeadlineSeconds; d < 0 || d > int32(maxAckDeadline/time.Second) {
		return status.Errorf(codes.InvalidArgument, "stream_ack_deadline_seconds %d outside [10, 600]", d)
	}
	st := &stream{
		maxMsgs:     int(first.MaxOutstandingMessages),
		maxBytes:    first.MaxOutstandingBytes,
		ackDeadline: time.Duration(first.StreamAckDeadlineSeconds) * time.Second,
	}
	sub.mu.Lock()
	sub.streams[st] = struct{}{}
	sub.mu.Unlock()
	defer func() {
		sub.mu.Lock()
		delete(sub.streams, st)
		sub.mu.Unlock()
	}()
	// With exactly-once delivery, acks and modacks sent on the stream are
	// confirmed on it; the receive goroutine hands confirmations to the
	// sending loop, the stream's only sender.
	confirms := make(chan *pb.StreamingPullResponse, 64)
	handle := func(req *pb.StreamingPullRequest) bool {
		acked, failed, eod := sub.ackIDs(req.AckIds)
		var mdone, mfailed []string
		for i, id := range req.ModifyDeadlineAckIds {
			if i < len(req.ModifyDeadlineSeconds) {
				d, f, e := sub.modAck([]string{id}, req.ModifyDeadlineSeconds[i])
				mdone, mfailed, eod = append(mdone, d...), append(mfailed, f...), eod || e
			}
		}
		if d := req.StreamAckDeadlineSeconds; d > 0 {
			sub.mu.Lock()
			st.ackDeadline = time.Duration(d) * time.Second
			sub.mu.Unlock()
		}
		if eod && len(req.AckIds)+len(req.ModifyDeadlineAckIds) > 0 {
			resp := &pb.StreamingPullResponse{}
			if len(req.AckIds) > 0 {
				resp.AcknowledgeConfirmation = &pb.StreamingPullResponse_AcknowledgeConfirmation{AckIds: acked, InvalidAckIds: failed}
			}
			if len(req.ModifyDeadlineAckIds) > 0 {
				resp.ModifyAckDeadlineConfirmation = &pb.StreamingPullResponse_ModifyAckDeadlineConfirmation{AckIds: mdone, InvalidAckIds: mfailed}
			}
			select {
			case confirms <- resp:
			case <-ss.Context().Done():
			}
		}
		return len(req.AckIds) == 0 && len(req.ModifyDeadlineAckIds) == 0
	}
	handle(first)

	ping := make(chan struct{}, 1)
	recvDone := make(chan error, 1)
	go func() {
		for {
			req, err := ss.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			if handle(req) && first.ProtocolVersion >= 1 {
				select {
				case ping <- struct{}{}:
				default:
				}
			}
		}
	}()

	ctx := ss.Context()
	for {
		select { // confirmations first, so a busy stream cannot starve them
		case resp := <-confirms:
			sub.mu.Lock()
			resp.SubscriptionProperties = sub.props
			sub.mu.Unlock()
			if err := ss.Send(resp); err != nil {
				return err
			}
		default:
		}
		sub.mu.Lock()
		if sub.deleted {
			sub.mu.Unlock()
			return status.Errorf(codes.NotFound, "subscription %s not found", sub.name)
		}
		var msgs []*pb.ReceivedMessage
		room := maxMessagesPerResp
		if st.maxMsgs > 0 {
			room = min(room, st.maxMsgs-st.outMsgs)
		}
		byteRoom := int64(maxBytesPerResp)
		if st.maxBytes > 0 {
			byteRoom = min(byteRoom, st.maxBytes-st.outBytes)
		}
		if room > 0 && byteRoom > 0 {
			msgs = sub.takeLocked(room, byteRoom, st, s.now())
		}
		ch, props := sub.notify, sub.props
		sub.unlock()
		if len(msgs) > 0 {
			if err := ss.Send(&pb.StreamingPullResponse{ReceivedMessages: msgs, SubscriptionProperties: props}); err != nil {
				sub.nackUnsent(msgs)
				return err
			}
			continue
		}
		select {
		case <-ch:
		case resp := <-confirms:
			resp.SubscriptionProperties = props
			if err := ss.Send(resp); err != nil {
				return err
			}
		case <-ping:
			if err := ss.Send(&pb.StreamingPullResponse{SubscriptionProperties: props}); err != nil {
				return err
			}
		case err := <-recvDone:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stop:
			return status.Error(codes.Unavailable, "server shutting down")
		}
	}
}
