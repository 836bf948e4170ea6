package pubsubio

import (
	"context"
	"net"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
)

// recordingSubscriber is a Pub/Sub Subscriber service that answers every
// Pull empty, at once or after a long poll as asked, and records each
// request and the time its caller allowed.
type recordingSubscriber struct {
	pubsubpb.UnimplementedSubscriberServer
	reqs chan *pubsubpb.PullRequest
	dls  chan time.Duration
}

func (r *recordingSubscriber) Pull(ctx context.Context, req *pubsubpb.PullRequest) (*pubsubpb.PullResponse, error) {
	dl, _ := ctx.Deadline()
	r.reqs <- req
	r.dls <- time.Until(dl)
	if !req.ReturnImmediately { //nolint:staticcheck // what is tested
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &pubsubpb.PullResponse{}, nil
}

// TestPullAnswersAtOnce: the source never long-polls, so that an idle
// source's watermark moves every PollInterval (see PullOptions.PollInterval),
// and gives each Pull a deadline far past its answer (see pull).
func TestPullAnswersAtOnce(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recordingSubscriber{reqs: make(chan *pubsubpb.PullRequest, 1), dls: make(chan time.Duration, 1)}
	gs := grpc.NewServer()
	pubsubpb.RegisterSubscriberServer(gs, r)
	go gs.Serve(lis)
	defer gs.Stop()
	t.Setenv("PUBSUB_EMULATOR_HOST", lis.Addr().String())

	f := &pullFn{PullOptions: PullOptions{Project: "idle", Subscription: SubscriptionPath("idle", "s"),
		AckDeadline: 10 * time.Second}}
	if err := f.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	resp, err := f.pull(context.Background(), 10)
	if err != nil || len(resp.GetReceivedMessages()) != 0 {
		t.Fatalf("pull = %v, %v; want an empty answer", resp, err)
	}
	req, allowed := <-r.reqs, <-r.dls
	if !req.ReturnImmediately || req.MaxMessages != 10 { //nolint:staticcheck // what is tested
		t.Errorf("pull sent %v, want an answer at once for up to 10 messages", req)
	}
	if allowed < pullTimeout/2 {
		t.Errorf("the server was allowed %v to answer, want about %v", allowed, pullTimeout)
	}

	// A batch bigger than one Pull's answer is asked for in pulls of at
	// most maxPullMessages.
	if _, err := f.pull(context.Background(), DefaultMaxMessages); err != nil {
		t.Fatal(err)
	}
	if req := <-r.reqs; req.MaxMessages != maxPullMessages {
		t.Errorf("a pull for %d messages asked for %d, want %d", DefaultMaxMessages, req.MaxMessages, maxPullMessages)
	}
	<-r.dls
}
