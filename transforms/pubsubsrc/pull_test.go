package pubsubsrc

import (
	"context"
	"net"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
)

// holdingSubscriber is a Pub/Sub Subscriber service whose Pull holds every
// request until its deadline, as a server with no message may, and
// records how long the caller allowed.
type holdingSubscriber struct {
	pubsubpb.UnimplementedSubscriberServer
	allowed chan time.Duration
}

func (h *holdingSubscriber) Pull(ctx context.Context, req *pubsubpb.PullRequest) (*pubsubpb.PullResponse, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		h.allowed <- -1
	} else {
		h.allowed <- time.Until(dl)
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestIdlePullEndsAtIdleWait: a pull waiting for a first message gives the
// server IdleWait, not the 30 s of a gathering pull, so that an idle
// source's watermark moves (see PullOptions.IdleWait); the deadline is an
// empty answer, not an error.
func TestIdlePullEndsAtIdleWait(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdingSubscriber{allowed: make(chan time.Duration, 4)}
	gs := grpc.NewServer()
	pubsubpb.RegisterSubscriberServer(gs, h)
	go gs.Serve(lis)
	defer gs.Stop()
	t.Setenv("PUBSUB_EMULATOR_HOST", lis.Addr().String())

	f := &pullFn{PullOptions: PullOptions{Project: "idle", Subscription: SubscriptionPath("idle", "s"),
		AckDeadline: 10 * time.Second}}
	if err := f.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer f.Teardown()
	if f.IdleWait != 200*time.Millisecond {
		t.Errorf("default IdleWait = %v, want 200ms", f.IdleWait)
	}
	resp, err := f.pull(context.Background(), 10, false)
	if err != nil || len(resp.GetReceivedMessages()) != 0 {
		t.Fatalf("idle pull = %v, %v; want an empty answer", resp, err)
	}
	if got := <-h.allowed; got <= 0 || got > f.IdleWait {
		t.Errorf("the server was allowed %v for an idle pull, want at most IdleWait %v", got, f.IdleWait)
	}

	// A cancelled job is an error, not an empty answer.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-h.allowed; cancel() }()
	if _, err := f.pull(ctx, 10, false); err == nil {
		t.Error("a pull whose job was cancelled returned no error")
	}
}
