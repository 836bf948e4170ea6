package pubsubemu

import (
	"context"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

func (g *subscriberService) Acknowledge(_ context.Context, req *pb.AcknowledgeRequest) (*emptypb.Empty, error) {
	sub, err := g.s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	if err := checkAckRequest(req, req.AckIds); err != nil {
		return nil, err
	}
	_, failed, eod := sub.ackIDs(req.AckIds)
	if err := ackError(eod, failed); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// checkAckRequest enforces the request size limit and rejects malformed ack ids.
func checkAckRequest(req proto.Message, ids []string) error {
	if n := proto.Size(req); n > maxAckRequestBytes {
		return status.Errorf(codes.InvalidArgument, "request of %d bytes exceeds the limit of %d bytes", n, maxAckRequestBytes)
	}
	for _, id := range ids {
		if !wellFormedAckID(id) {
			return status.Errorf(codes.InvalidArgument, "invalid ack id %q", id)
		}
	}
	return nil
}

// wellFormedAckID reports whether id has the shape of the ack ids this
// server hands out (boot id, "-", base-36 sequence), from any boot.
func wellFormedAckID(id string) bool {
	if len(id) < 10 || len(id) > 32 || id[8] != '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case i == 8:
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'g' && c <= 'z' && i > 8:
		default:
			return false
		}
	}
	return true
}

// Exactly-once delivery reports per-ack-id failures the way Pub/Sub does: an
// INVALID_ARGUMENT status carrying an ErrorInfo whose metadata maps each
// failed ack id to its reason, which the client libraries read.
const (
	eodErrorReason    = "EXACTLY_ONCE_ACKID_FAILURE"
	eodErrorDomain    = "pubsub.googleapis.com"
	eodInvalidAckID   = "PERMANENT_FAILURE_INVALID_ACK_ID"
	eodInvalidMessage = "Some acknowledgement ids in the request were invalid. This could be because the acknowledgement ids have expired or the acknowledgement ids were malformed."
)

// ackError builds the exactly-once error for the failed ack ids; nil when
// none failed or the subscription is not exactly-once.
func ackError(eod bool, failed []string) error {
	if !eod || len(failed) == 0 {
		return nil
	}
	md := make(map[string]string, len(failed))
	for _, id := range failed {
		md[id] = eodInvalidAckID
	}
	st, err := status.New(codes.InvalidArgument, eodInvalidMessage).WithDetails(&errdetails.ErrorInfo{
		Reason:   eodErrorReason,
		Domain:   eodErrorDomain,
		Metadata: md,
	})
	if err != nil {
		return status.Errorf(codes.Internal, "ack error details: %v", err)
	}
	return st.Err()
}

func (g *subscriberService) ModifyAckDeadline(_ context.Context, req *pb.ModifyAckDeadlineRequest) (*emptypb.Empty, error) {
	sub, err := g.s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	if req.AckDeadlineSeconds < 0 || req.AckDeadlineSeconds > int32(maxAckDeadline/time.Second) {
		return nil, status.Errorf(codes.InvalidArgument, "ack_deadline_seconds %d outside [0, 600]", req.AckDeadlineSeconds)
	}
	if err := checkAckRequest(req, req.AckIds); err != nil {
		return nil, err
	}
	_, failed, eod := sub.modAck(req.AckIds, req.AckDeadlineSeconds)
	if err := ackError(eod, failed); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (g *subscriberService) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	s := g.s
	sub, err := s.findSub(req.Subscription)
	if err != nil {
		return nil, err
	}
	if req.MaxMessages <= 0 {
		return nil, status.Error(codes.InvalidArgument, "max_messages must be positive")
	}
	limit := int(min(req.MaxMessages, maxMessagesPerResp))
	var timeout <-chan time.Time
	for {
		sub.mu.Lock()
		if sub.deleted {
			sub.mu.Unlock()
			return nil, status.Errorf(codes.NotFound, "subscription %s not found", req.Subscription)
		}
		if sub.proto.Detached {
			sub.mu.Unlock()
			return nil, status.Errorf(codes.FailedPrecondition, "subscription %s is detached", req.Subscription)
		}
		now := s.now()
		sub.expireLocked(now)
		msgs := sub.takeLocked(limit, maxBytesPerResp, nil, now)
		ch := sub.notify
		sub.unlock()
		if len(msgs) > 0 || req.ReturnImmediately { //nolint:staticcheck // deprecated but honoured
			return &pb.PullResponse{ReceivedMessages: msgs}, nil
		}
		if timeout == nil {
			timeout = time.After(pullWait(ctx))
		}
		select {
		case <-ch:
		case <-timeout:
			return &pb.PullResponse{}, nil
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-s.stop:
			return &pb.PullResponse{}, nil
		}
	}
}

// pullWait bounds a long poll: up to pullWaitMax, returning an empty response
// before the caller's deadline rather than letting it expire.
func pullWait(ctx context.Context) time.Duration {
	wait := pullWaitMax
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		margin := min(200*time.Millisecond, left/2)
		wait = min(wait, left-margin)
	}
	return max(wait, 0)
}
