package pubsubemu

import (
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func snapName(id string) string { return project + "/snapshots/" + id }

// drain pulls and acks everything there is.
func drain(t *testing.T, c *pubsub.Client, sub string) []string {
	t.Helper()
	var all []string
	for {
		got := pull(t, c, sub, 100)
		if len(got) == 0 {
			return all
		}
		all = append(all, dataOf(got)...)
		ack(t, c, sub, ackIDs(got)...)
	}
}

// TestSnapshotSeekReplays: a snapshot keeps the subscription's unacked
// messages and everything published after it; seeking to it makes exactly
// those unacknowledged again.
func TestSnapshotSeekReplays(t *testing.T) {
	clk := newFakeClock()
	dir := t.TempDir()
	s1, err := Start("127.0.0.1:0", Options{DataDir: dir, Now: clk.Now})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newClient(t, s1.Addr())
	ctx := testCtx(t)
	mustTopic(t, c, &pb.Topic{Name: topicName("orders")})
	mustTopic(t, c, &pb.Topic{Name: topicName("other")})
	mustSub(t, c, &pb.Subscription{Name: subName("orders-sub"), Topic: topicName("orders"), AckDeadlineSeconds: 60})
	mustSub(t, c, &pb.Subscription{Name: subName("other-sub"), Topic: topicName("other")})
	publish(t, c, topicName("orders"), &pubsub.Message{Data: []byte("m1")})
	first := pullUntil(t, c, subName("orders-sub"), 1, 5*time.Second)
	ack(t, c, subName("orders-sub"), first[0].AckId)
	clk.Advance(time.Hour)
	publish(t, c, topicName("orders"), &pubsub.Message{Data: []byte("m2")}, &pubsub.Message{Data: []byte("m3")})
	pullUntil(t, c, subName("orders-sub"), 1, 5*time.Second) // m2 outstanding, not acked: still in the snapshot
	created := clk.Now()

	_, err = c.SubscriptionAdminClient.CreateSnapshot(ctx, &pb.CreateSnapshotRequest{Name: snapName("1bad"), Subscription: subName("orders-sub")})
	wantCode(t, "CreateSnapshot 1bad", err, codes.InvalidArgument)
	sn, err := c.SubscriptionAdminClient.CreateSnapshot(ctx, &pb.CreateSnapshotRequest{Name: snapName("before"), Subscription: subName("orders-sub"), Labels: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if sn.Topic != topicName("orders") || !sn.ExpireTime.AsTime().Equal(created.Add(7*24*time.Hour)) {
		t.Fatalf("snapshot = %v, want topic orders and expiry 7 days after m2 was published", sn)
	}
	_, err = c.SubscriptionAdminClient.CreateSnapshot(ctx, &pb.CreateSnapshotRequest{Name: snapName("before"), Subscription: subName("orders-sub")})
	wantCode(t, "CreateSnapshot twice", err, codes.AlreadyExists)
	publish(t, c, topicName("orders"), &pubsub.Message{Data: []byte("m4")})
	clk.Advance(time.Minute) // m2's deadline passes; everything is then acked
	if got := drain(t, c, subName("orders-sub")); len(got) != 3 {
		t.Fatalf("drained %v, want m2 m3 m4", got)
	}

	// The snapshot survives a restart.
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := Start("127.0.0.1:0", Options{DataDir: dir, Now: clk.Now})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer s2.Close()
	c = newClient(t, s2.Addr())
	ctx = testCtx(t)

	if _, err := c.SubscriptionAdminClient.Seek(ctx, &pb.SeekRequest{Subscription: subName("orders-sub"), Target: &pb.SeekRequest_Snapshot{Snapshot: snapName("before")}}); err != nil {
		t.Fatalf("Seek to snapshot: %v", err)
	}
	if got := drain(t, c, subName("orders-sub")); !slices.Equal(got, []string{"m2", "m3", "m4"}) {
		t.Fatalf("after seek to the snapshot drained %v, want [m2 m3 m4]", got)
	}
	_, err = c.SubscriptionAdminClient.Seek(ctx, &pb.SeekRequest{Subscription: subName("other-sub"), Target: &pb.SeekRequest_Snapshot{Snapshot: snapName("before")}})
	wantCode(t, "Seek to a snapshot of another topic", err, codes.InvalidArgument)

	got, err := c.SubscriptionAdminClient.GetSnapshot(ctx, &pb.GetSnapshotRequest{Snapshot: snapName("before")})
	if err != nil || got.Labels["k"] != "v" {
		t.Fatalf("GetSnapshot = %v, %v", got, err)
	}
	it := c.SubscriptionAdminClient.ListSnapshots(ctx, &pb.ListSnapshotsRequest{Project: project})
	if s, err := it.Next(); err != nil || s.Name != snapName("before") {
		t.Fatalf("ListSnapshots first = %v, %v", s, err)
	}
	tit := c.TopicAdminClient.ListTopicSnapshots(ctx, &pb.ListTopicSnapshotsRequest{Topic: topicName("orders")})
	if n, err := tit.Next(); err != nil || n != snapName("before") {
		t.Fatalf("ListTopicSnapshots first = %v, %v", n, err)
	}
	sit := c.TopicAdminClient.ListTopicSubscriptions(ctx, &pb.ListTopicSubscriptionsRequest{Topic: topicName("orders")})
	var subs []string
	for n, err := sit.Next(); err == nil; n, err = sit.Next() {
		subs = append(subs, n)
	}
	if !slices.Equal(subs, []string{subName("orders-sub")}) {
		t.Fatalf("ListTopicSubscriptions = %v: a snapshot is not a subscription", subs)
	}
	up, err := c.SubscriptionAdminClient.UpdateSnapshot(ctx, &pb.UpdateSnapshotRequest{
		Snapshot:   &pb.Snapshot{Name: snapName("before"), Labels: map[string]string{"k": "w"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}}})
	if err != nil || up.Labels["k"] != "w" || !up.ExpireTime.AsTime().Equal(sn.ExpireTime.AsTime()) {
		t.Fatalf("UpdateSnapshot = %v, %v", up, err)
	}

	// It expires 7 days after the oldest message it kept was published.
	if _, err := c.SubscriptionAdminClient.CreateSnapshot(ctx, &pb.CreateSnapshotRequest{Name: snapName("empty"), Subscription: subName("orders-sub")}); err != nil {
		t.Fatalf("CreateSnapshot of a drained subscription: %v", err)
	}
	if err := c.SubscriptionAdminClient.DeleteSnapshot(ctx, &pb.DeleteSnapshotRequest{Snapshot: snapName("empty")}); err != nil {
		t.Fatalf("DeleteSnapshot: %v", err)
	}
	_, err = c.SubscriptionAdminClient.GetSnapshot(ctx, &pb.GetSnapshotRequest{Snapshot: snapName("empty")})
	wantCode(t, "GetSnapshot after delete", err, codes.NotFound)
	clk.Advance(7 * 24 * time.Hour)
	eventually(t, 5*time.Second, "the snapshot to expire", func() bool {
		_, err := c.SubscriptionAdminClient.GetSnapshot(ctx, &pb.GetSnapshotRequest{Snapshot: snapName("before")})
		return err != nil
	})
	_, err = c.SubscriptionAdminClient.Seek(ctx, &pb.SeekRequest{Subscription: subName("orders-sub"), Target: &pb.SeekRequest_Snapshot{Snapshot: snapName("before")}})
	wantCode(t, "Seek to an expired snapshot", err, codes.NotFound)
}
