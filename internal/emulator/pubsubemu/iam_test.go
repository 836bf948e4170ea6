package pubsubemu

import (
	"slices"
	"testing"

	"cloud.google.com/go/iam/apiv1/iampb"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
)

// TestIAMPolicies: google.iam.v1.IAMPolicy on the same server, through the
// official client's admin clients: stored policies with etags, kept across a
// restart, dropped with their resource; every Pub/Sub permission granted.
func TestIAMPolicies(t *testing.T) {
	dir := t.TempDir()
	s1, err := Start("127.0.0.1:0", Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newClient(t, s1.Addr())
	ctx := testCtx(t)
	mustTopic(t, c, &pb.Topic{Name: topicName("orders")})
	mustSub(t, c, &pb.Subscription{Name: subName("orders-sub"), Topic: topicName("orders")})

	p, err := c.TopicAdminClient.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: topicName("orders")})
	if err != nil || len(p.Bindings) != 0 || len(p.Etag) == 0 {
		t.Fatalf("GetIamPolicy of a new topic = %v, %v", p, err)
	}
	_, err = c.TopicAdminClient.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: topicName("missing")})
	wantCode(t, "GetIamPolicy of a missing topic", err, codes.NotFound)

	binding := &iampb.Binding{Role: "roles/pubsub.publisher", Members: []string{"serviceAccount:svc@proj.iam.gserviceaccount.com"}}
	set, err := c.TopicAdminClient.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: topicName("orders"), Policy: &iampb.Policy{Bindings: []*iampb.Binding{binding}, Etag: p.Etag}})
	if err != nil || string(set.Etag) == string(p.Etag) {
		t.Fatalf("SetIamPolicy = %v, %v (want a new etag)", set, err)
	}
	_, err = c.TopicAdminClient.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: topicName("orders"), Policy: &iampb.Policy{Etag: p.Etag}})
	wantCode(t, "SetIamPolicy with a stale etag", err, codes.Aborted)
	_, err = c.TopicAdminClient.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: topicName("orders"), Policy: &iampb.Policy{Bindings: []*iampb.Binding{{Role: "owner", Members: []string{"user:a@b.c"}}}}})
	wantCode(t, "SetIamPolicy with a bad role", err, codes.InvalidArgument)
	_, err = c.TopicAdminClient.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: topicName("orders"), Policy: &iampb.Policy{Bindings: []*iampb.Binding{{Role: "roles/pubsub.viewer", Members: []string{"a@b.c"}}}}})
	wantCode(t, "SetIamPolicy with a bad member", err, codes.InvalidArgument)
	if _, err := c.SubscriptionAdminClient.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: subName("orders-sub"), Policy: &iampb.Policy{Bindings: []*iampb.Binding{{Role: "roles/pubsub.subscriber", Members: []string{"allUsers"}}}}}); err != nil {
		t.Fatalf("SetIamPolicy on a subscription: %v", err)
	}

	perms := []string{"pubsub.subscriptions.consume", "pubsub.subscriptions.get"}
	tp, err := c.SubscriptionAdminClient.TestIamPermissions(ctx, &iampb.TestIamPermissionsRequest{Resource: subName("orders-sub"), Permissions: perms})
	if err != nil || !slices.Equal(tp.Permissions, perms) {
		t.Fatalf("TestIamPermissions = %v, %v", tp, err)
	}

	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, err := Start("127.0.0.1:0", Options{DataDir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer s2.Close()
	c = newClient(t, s2.Addr())
	ctx = testCtx(t)
	got, err := c.TopicAdminClient.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: topicName("orders")})
	if err != nil || len(got.Bindings) != 1 || got.Bindings[0].Role != binding.Role || string(got.Etag) != string(set.Etag) {
		t.Fatalf("GetIamPolicy after restart = %v, %v", got, err)
	}
	if err := c.TopicAdminClient.DeleteTopic(ctx, &pb.DeleteTopicRequest{Topic: topicName("orders")}); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	mustTopic(t, c, &pb.Topic{Name: topicName("orders")})
	got, err = c.TopicAdminClient.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{Resource: topicName("orders")})
	if err != nil || len(got.Bindings) != 0 {
		t.Fatalf("a re-created topic inherited the old policy: %v, %v", got, err)
	}
}
