package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/inventory-events/inventory/loaders/broker"
)

// TestSetupForDataflow: against the local Pub/Sub, --for-dataflow gives
// inventory-sub neither a dead-letter nor a retry policy, takes both off a
// subscription an earlier plain setup made, and is idempotent; a plain setup
// afterwards puts them back.
func TestSetupForDataflow(t *testing.T) {
	a := startEmulator(t)
	ctx := context.Background()
	get := func() *pubsubpb.Subscription {
		t.Helper()
		s, err := a.Client.SubscriptionAdminClient.GetSubscription(ctx,
			&pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + project + "/subscriptions/inventory-sub"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	run := func(cfg broker.SetupConfig) []broker.Action {
		t.Helper()
		cfg.Project = project
		acts, err := a.Setup(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return acts
	}
	verbOf := func(acts []broker.Action, what string) string {
		for _, act := range acts {
			if act.What == what {
				return act.Verb + " " + act.Note
			}
		}
		return "missing"
	}

	// A fresh project, set up for Dataflow.
	run(broker.SetupConfig{ForDataflow: true})
	if s := get(); s.GetDeadLetterPolicy() != nil || s.GetRetryPolicy() != nil || s.GetAckDeadlineSeconds() != 60 {
		t.Fatalf("for Dataflow: subscription %v", s)
	}
	if again := run(broker.SetupConfig{ForDataflow: true}); broker.Changed(again) {
		t.Fatalf("second --for-dataflow run changed %v", again)
	}

	// Plain setup adds the policies; --for-dataflow takes them off again.
	run(broker.SetupConfig{})
	if s := get(); s.GetDeadLetterPolicy() == nil || s.GetRetryPolicy() == nil {
		t.Fatalf("plain setup: subscription %v", s)
	}
	acts := run(broker.SetupConfig{ForDataflow: true})
	if v := verbOf(acts, "subscription inventory-sub"); v != "update dead_letter_policy, retry_policy" {
		t.Errorf("switching to Dataflow: inventory-sub %q, want update of both policies (%v)", v, acts)
	}
	if s := get(); s.GetDeadLetterPolicy() != nil || s.GetRetryPolicy() != nil {
		t.Fatalf("after switching: subscription %v", s)
	}
	for _, other := range []string{"subscription low-stock-consumer", "subscription inventory-dead-letter-sub"} {
		if v := verbOf(acts, other); v != "unchanged " {
			t.Errorf("%s: %q, want unchanged", other, v)
		}
	}
	if again := run(broker.SetupConfig{ForDataflow: true}); broker.Changed(again) {
		t.Fatalf("--for-dataflow after switching changed %v", again)
	}
}

// TestSetupSubscriptionsNeverExpire: Pub/Sub deletes a subscription nobody
// reads for 31 days unless its expiration policy has no TTL. Every
// subscription setup makes never expires, and one an older setup made
// with the default (the local Pub/Sub gives the same 31 days) is updated.
func TestSetupSubscriptionsNeverExpire(t *testing.T) {
	a := startEmulator(t)
	ctx := context.Background()
	subs := []string{"inventory-sub", "low-stock-consumer", "inventory-dead-letter-sub", "threshold-updates-sub"}
	ttl := func(id string) *pubsubpb.ExpirationPolicy {
		t.Helper()
		s, err := a.Client.SubscriptionAdminClient.GetSubscription(ctx,
			&pubsubpb.GetSubscriptionRequest{Subscription: "projects/" + project + "/subscriptions/" + id})
		if err != nil {
			t.Fatal(err)
		}
		return s.GetExpirationPolicy()
	}
	if _, err := a.Setup(ctx, broker.SetupConfig{Project: project, ForDataflow: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range subs {
		if p := ttl(id); p == nil || p.GetTtl() != nil {
			t.Errorf("%s: expiration policy %v, want one without a TTL (never expire)", id, p)
		}
	}

	// An older subscription with Pub/Sub's default expiry is updated.
	old := "projects/" + project + "/subscriptions/threshold-updates-sub"
	if err := a.Client.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: old}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: old, Topic: "projects/" + project + "/topics/threshold-updates", AckDeadlineSeconds: 60,
	}); err != nil {
		t.Fatal(err)
	}
	if p := ttl("threshold-updates-sub"); p.GetTtl().AsDuration() != 31*24*time.Hour {
		t.Fatalf("the local Pub/Sub's default expiry is %v, want Pub/Sub's 31 days", p)
	}
	acts, err := a.Setup(ctx, broker.SetupConfig{Project: project, ForDataflow: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, act := range acts {
		if act.What == "subscription threshold-updates-sub" {
			found = act.Verb == "update" && strings.Contains(act.Note, "expiration_policy")
		}
	}
	if !found || ttl("threshold-updates-sub").GetTtl() != nil {
		t.Errorf("setup over a default-expiry subscription: %v, then policy %v; want an update to never expire", acts, ttl("threshold-updates-sub"))
	}
}
