package pubsubemu

import (
	"errors"
	"io"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamFlow is one StreamingPull connection's flow-control state (guarded by sub.mu).
type streamFlow struct {
	maxMsgs     int
	maxBytes    int64
	outMsgs     int
	outBytes    int64
	ackDeadline time.Duration
}

// stream is one StreamingPull connection. Its receive loop applies the
// client's acks and modacks; its send loop, the connection's only sender,
// delivers messages, confirmations and ping replies.
type stream struct {
	srv   *Server
	sub   *subscription
	gs    pb.Subscriber_StreamingPullServer
	flow  *streamFlow
	pings bool // the client's protocol version asks for replies to pings

	// With exactly-once delivery, acks and modacks sent on the stream are
	// confirmed on it: the receive loop hands confirmations to the send loop.
	confirms chan *pb.StreamingPullResponse
	ping     chan struct{}
	recvDone chan error
}

func (g *subscriberService) StreamingPull(gs pb.Subscriber_StreamingPullServer) error {
	first, err := gs.Recv()
	if err != nil {
		return err
	}
	st, err := g.s.openStream(gs, first)
	if err != nil {
		return err
	}
	defer st.close()
	st.handle(first)
	go st.recvLoop()
	return st.sendLoop()
}

// openStream checks a stream's first request and registers its flow control
// with the subscription.
func (s *Server) openStream(gs pb.Subscriber_StreamingPullServer, first *pb.StreamingPullRequest) (*stream, error) {
	sub, err := s.findSub(first.Subscription)
	if err != nil {
		return nil, err
	}
	sub.mu.Lock()
	detached := sub.proto.Detached
	sub.mu.Unlock()
	if detached {
		return nil, status.Errorf(codes.FailedPrecondition, "subscription %s is detached", sub.name)
	}
	if d := first.StreamAckDeadlineSeconds; d < 0 || d > int32(maxAckDeadline/time.Second) {
		return nil, status.Errorf(codes.InvalidArgument, "stream_ack_deadline_seconds %d outside [10, 600]", d)
	}
	flow := &streamFlow{
		maxMsgs:     int(first.MaxOutstandingMessages),
		maxBytes:    first.MaxOutstandingBytes,
		ackDeadline: time.Duration(first.StreamAckDeadlineSeconds) * time.Second,
	}
	sub.mu.Lock()
	sub.streams[flow] = struct{}{}
	sub.mu.Unlock()
	return &stream{
		srv:      s,
		sub:      sub,
		gs:       gs,
		flow:     flow,
		pings:    first.ProtocolVersion >= 1,
		confirms: make(chan *pb.StreamingPullResponse, 64),
		ping:     make(chan struct{}, 1),
		recvDone: make(chan error, 1),
	}, nil
}

// close unregisters the stream's flow control.
func (st *stream) close() {
	st.sub.mu.Lock()
	delete(st.sub.streams, st.flow)
	st.sub.mu.Unlock()
}

// recvLoop applies the client's requests until the stream breaks, and
// reports why on recvDone. A request with nothing to apply is a ping.
func (st *stream) recvLoop() {
	for {
		req, err := st.gs.Recv()
		if err != nil {
			st.recvDone <- err
			return
		}
		if st.handle(req) && st.pings {
			select {
			case st.ping <- struct{}{}:
			default:
			}
		}
	}
}

// handle applies a request's acks, modacks and ack deadline, queues their
// confirmation on an exactly-once subscription, and reports whether the
// request was a ping (no ack ids of either kind).
func (st *stream) handle(req *pb.StreamingPullRequest) bool {
	sub := st.sub
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
		st.flow.ackDeadline = time.Duration(d) * time.Second
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
		case st.confirms <- resp:
		case <-st.gs.Context().Done():
		}
	}
	return len(req.AckIds) == 0 && len(req.ModifyDeadlineAckIds) == 0
}

// sendLoop sends until the stream ends: pending confirmations first, so a
// busy stream cannot starve them, then the messages its flow control lets
// through; with nothing to send it waits for messages, a confirmation, a
// ping or the end.
func (st *stream) sendLoop() error {
	for {
		select {
		case resp := <-st.confirms:
			st.sub.mu.Lock()
			resp.SubscriptionProperties = st.sub.props
			st.sub.mu.Unlock()
			if err := st.gs.Send(resp); err != nil {
				return err
			}
		default:
		}
		msgs, more, props, err := st.take()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			if err := st.gs.Send(&pb.StreamingPullResponse{ReceivedMessages: msgs, SubscriptionProperties: props}); err != nil {
				st.sub.nackUnsent(msgs)
				return err
			}
			continue
		}
		if done, err := st.wait(more, props); done {
			return err
		}
	}
}

// take delivers what the stream's flow control has room for, and returns the
// channel that signals more messages or room, and the properties to send.
func (st *stream) take() ([]*pb.ReceivedMessage, <-chan struct{}, *pb.StreamingPullResponse_SubscriptionProperties, error) {
	sub, flow := st.sub, st.flow
	sub.mu.Lock()
	if sub.deleted {
		sub.mu.Unlock()
		return nil, nil, nil, status.Errorf(codes.NotFound, "subscription %s not found", sub.name)
	}
	var msgs []*pb.ReceivedMessage
	room := maxMessagesPerResp
	if flow.maxMsgs > 0 {
		room = min(room, flow.maxMsgs-flow.outMsgs)
	}
	byteRoom := int64(maxBytesPerResp)
	if flow.maxBytes > 0 {
		byteRoom = min(byteRoom, flow.maxBytes-flow.outBytes)
	}
	if room > 0 && byteRoom > 0 {
		msgs = sub.takeLocked(room, byteRoom, flow, st.srv.now())
	}
	more, props := sub.notify, sub.props
	sub.unlock()
	return msgs, more, props, nil
}

// wait blocks until there may be messages to send, or sends a confirmation
// or a ping reply; done says the stream has ended, with err.
func (st *stream) wait(more <-chan struct{}, props *pb.StreamingPullResponse_SubscriptionProperties) (done bool, err error) {
	select {
	case <-more:
	case resp := <-st.confirms:
		resp.SubscriptionProperties = props
		if err := st.gs.Send(resp); err != nil {
			return true, err
		}
	case <-st.ping:
		if err := st.gs.Send(&pb.StreamingPullResponse{SubscriptionProperties: props}); err != nil {
			return true, err
		}
	case err := <-st.recvDone:
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		return true, err
	case <-st.gs.Context().Done():
		return true, status.FromContextError(st.gs.Context().Err()).Err()
	case <-st.srv.stop:
		return true, status.Error(codes.Unavailable, "server shutting down")
	}
	return false, nil
}
