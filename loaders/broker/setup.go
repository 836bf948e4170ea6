package broker

import (
	"context"
	"errors"
	"fmt"
	"github.com/inventory-events/inventory/internal/names"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pubsubapi "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// Names of everything Setup creates. DefaultNames has the product's.
type Names struct {
	Topic, Subscription            string
	AlertTopic, AlertSubscription  string
	DeadLetterTopic, DeadLetterSub string
	Schema, AlertSchema            string
	// ThresholdTopic carries live reorder threshold changes (inventory
	// thresholds set) to the streaming job's ThresholdSubscription.
	ThresholdTopic, ThresholdSubscription, ThresholdSchema string
}

// DefaultNames returns the system's resource names, as package names defines them.
func DefaultNames() Names {
	return Names{
		Topic: names.Topic, Subscription: names.Subscription,
		AlertTopic: names.AlertTopic, AlertSubscription: names.AlertSubscription,
		DeadLetterTopic: names.DeadLetterTopic, DeadLetterSub: names.DeadLetterSubscription,
		Schema: names.Schema, AlertSchema: names.AlertSchema,
		ThresholdTopic: names.ThresholdTopic, ThresholdSubscription: names.ThresholdSubscription, ThresholdSchema: names.ThresholdSchema,
	}
}

// SetupConfig says what Setup should make.
type SetupConfig struct {
	Project string
	Names   Names
	// Encoding binds the schemas as "JSON" (default) or "BINARY".
	Encoding string
	// MaxDeliveryAttempts before inventory-sub dead-letters a message (5).
	MaxDeliveryAttempts int32
	// AckDeadline of the subscriptions (60 s).
	AckDeadline time.Duration
	// DryRun plans without changing anything.
	DryRun bool
	// ForDataflow makes inventory-sub the subscription a Dataflow job reads:
	// no dead-letter policy and no retry policy. Pub/Sub's documentation
	// says Dataflow does not support them there (Dataflow acks messages
	// itself once it has checkpointed them, so delivery counts say nothing
	// about a message, and the policy could dead-letter valid ones); the
	// job dead-letters bad input itself. An existing subscription loses
	// both policies.
	ForDataflow bool
}

func (c *SetupConfig) defaults() {
	if c.Names == (Names{}) {
		c.Names = DefaultNames()
	}
	if c.Encoding == "" {
		c.Encoding = "JSON"
	}
	c.Encoding = strings.ToUpper(c.Encoding)
	if c.MaxDeliveryAttempts == 0 {
		c.MaxDeliveryAttempts = 5
	}
	if c.AckDeadline == 0 {
		c.AckDeadline = 60 * time.Second
	}
}

// Action is one thing Setup did or, in a dry run, would do.
type Action struct {
	Verb string // "create", "update", "new revision", "unchanged"
	What string // "topic inventory-topic"
	Note string
}

func (a Action) String() string {
	s := fmt.Sprintf("%-12s %s", a.Verb, a.What)
	if a.Note != "" {
		s += " (" + a.Note + ")"
	}
	return s
}

// Changed reports whether any action changes something.
func Changed(actions []Action) bool {
	for _, a := range actions {
		if a.Verb != "unchanged" {
			return true
		}
	}
	return false
}

// Admin holds the clients of a project: Setup uses them, and Publisher
// and Consumer share them.
type Admin struct {
	Project string
	Client  *pubsub.Client
	Schemas *pubsubapi.SchemaClient
}

// NewAdmin opens the clients for project.
func NewAdmin(ctx context.Context, project string, opts ...option.ClientOption) (*Admin, error) {
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	sc, err := pubsubapi.NewSchemaClient(ctx, opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("pubsub.NewSchemaClient: %w", err)
	}
	return &Admin{Project: project, Client: c, Schemas: sc}, nil
}

// Close closes the clients.
func (a *Admin) Close() error {
	return errors.Join(a.Schemas.Close(), a.Client.Close())
}

func (a *Admin) topic(id string) string  { return "projects/" + a.Project + "/topics/" + id }
func (a *Admin) sub(id string) string    { return "projects/" + a.Project + "/subscriptions/" + id }
func (a *Admin) schema(id string) string { return "projects/" + a.Project + "/schemas/" + id }

// Setup makes the topics, subscriptions and schemas of cfg exist as
// specified. It is idempotent: a second run returns only "unchanged".
func (a *Admin) Setup(ctx context.Context, cfg SetupConfig) ([]Action, error) {
	cfg.defaults()
	enc := pubsubpb.Encoding_JSON
	switch cfg.Encoding {
	case "JSON":
	case "BINARY":
		enc = pubsubpb.Encoding_BINARY
	default:
		return nil, fmt.Errorf("broker: setup: encoding %q is neither JSON nor BINARY", cfg.Encoding)
	}
	n := cfg.Names
	var acts []Action
	step := func(act Action, err error) error {
		if err != nil {
			return err
		}
		acts = append(acts, act)
		return nil
	}
	err := errors.Join(
		step(a.ensureSchema(ctx, n.Schema, inventoryv1.InventoryAdjustmentProto, cfg.DryRun)),
		step(a.ensureSchema(ctx, n.AlertSchema, inventoryv1.LowStockAlertProto, cfg.DryRun)),
	)
	if err == nil && n.ThresholdTopic != "" {
		err = step(a.ensureSchema(ctx, n.ThresholdSchema, inventoryv1.ThresholdUpdateProto, cfg.DryRun))
	}
	if err != nil {
		return acts, err
	}
	for _, t := range []struct {
		id     string
		schema string
	}{{n.Topic, n.Schema}, {n.AlertTopic, n.AlertSchema}, {n.DeadLetterTopic, ""}, {n.ThresholdTopic, n.ThresholdSchema}} {
		if t.id == "" {
			continue
		}
		want := &pubsubpb.Topic{Name: a.topic(t.id)}
		if t.schema != "" {
			want.SchemaSettings = &pubsubpb.SchemaSettings{Schema: a.schema(t.schema), Encoding: enc}
		}
		if err := step(a.ensureTopic(ctx, want, cfg.DryRun)); err != nil {
			return acts, err
		}
	}
	ack := int32(cfg.AckDeadline / time.Second)
	week := durationpb.New(7 * 24 * time.Hour)
	input := &pubsubpb.Subscription{Name: a.sub(n.Subscription), Topic: a.topic(n.Topic), AckDeadlineSeconds: ack, MessageRetentionDuration: week}
	if !cfg.ForDataflow {
		input.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{DeadLetterTopic: a.topic(n.DeadLetterTopic), MaxDeliveryAttempts: cfg.MaxDeliveryAttempts}
		input.RetryPolicy = &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(10 * time.Second), MaximumBackoff: durationpb.New(600 * time.Second)}
	}
	subs := []*pubsubpb.Subscription{
		input,
		{Name: a.sub(n.AlertSubscription), Topic: a.topic(n.AlertTopic), AckDeadlineSeconds: ack, MessageRetentionDuration: week},
		{Name: a.sub(n.DeadLetterSub), Topic: a.topic(n.DeadLetterTopic), AckDeadlineSeconds: ack, MessageRetentionDuration: week},
	}
	if n.ThresholdTopic != "" {
		subs = append(subs, &pubsubpb.Subscription{Name: a.sub(n.ThresholdSubscription), Topic: a.topic(n.ThresholdTopic),
			AckDeadlineSeconds: ack, MessageRetentionDuration: week})
	}
	for _, s := range subs {
		// Never expire: Pub/Sub deletes a subscription with no reader for
		// 31 days by default (threshold-updates-sub between threshold
		// changes, the dead-letter subscription on a quiet month). An
		// expiration policy without a TTL is "never".
		s.ExpirationPolicy = &pubsubpb.ExpirationPolicy{}
		if err := step(a.ensureSubscription(ctx, s, cfg.DryRun)); err != nil {
			return acts, err
		}
	}
	return acts, nil
}

func (a *Admin) ensureSchema(ctx context.Context, id, definition string, dry bool) (Action, error) {
	what := "schema " + id
	got, err := a.Schemas.GetSchema(ctx, &pubsubpb.GetSchemaRequest{Name: a.schema(id), View: pubsubpb.SchemaView_FULL})
	switch {
	case status.Code(err) == codes.NotFound:
		if dry {
			return Action{Verb: "create", What: what, Note: "dry run"}, nil
		}
		_, err := a.Schemas.CreateSchema(ctx, &pubsubpb.CreateSchemaRequest{
			Parent:   "projects/" + a.Project,
			SchemaId: id,
			Schema:   &pubsubpb.Schema{Type: pubsubpb.Schema_PROTOCOL_BUFFER, Definition: definition},
		})
		if err != nil {
			return Action{}, fmt.Errorf("broker: create %s: %w", what, err)
		}
		return Action{Verb: "create", What: what}, nil
	case err != nil:
		return Action{}, fmt.Errorf("broker: get %s: %w", what, err)
	case got.GetDefinition() == definition:
		return Action{Verb: "unchanged", What: what, Note: "revision " + got.GetRevisionId()}, nil
	}
	if dry {
		return Action{Verb: "new revision", What: what, Note: "dry run; the definition changed"}, nil
	}
	rev, err := a.Schemas.CommitSchema(ctx, &pubsubpb.CommitSchemaRequest{
		Name:   a.schema(id),
		Schema: &pubsubpb.Schema{Name: a.schema(id), Type: pubsubpb.Schema_PROTOCOL_BUFFER, Definition: definition},
	})
	if err != nil {
		return Action{}, fmt.Errorf("broker: commit %s: %w", what, err)
	}
	return Action{Verb: "new revision", What: what, Note: "revision " + rev.GetRevisionId()}, nil
}

func (a *Admin) ensureTopic(ctx context.Context, want *pubsubpb.Topic, dry bool) (Action, error) {
	what := "topic " + want.Name[strings.LastIndexByte(want.Name, '/')+1:]
	if want.SchemaSettings != nil {
		what += " (schema " + want.SchemaSettings.Schema[strings.LastIndexByte(want.SchemaSettings.Schema, '/')+1:] + ", " + want.SchemaSettings.Encoding.String() + ")"
	}
	got, err := a.Client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: want.Name})
	switch {
	case status.Code(err) == codes.NotFound:
		if dry {
			return Action{Verb: "create", What: what, Note: "dry run"}, nil
		}
		if _, err := a.Client.TopicAdminClient.CreateTopic(ctx, want); err != nil {
			return Action{}, fmt.Errorf("broker: create %s: %w", what, err)
		}
		return Action{Verb: "create", What: what}, nil
	case err != nil:
		return Action{}, fmt.Errorf("broker: get %s: %w", what, err)
	}
	gs, ws := got.GetSchemaSettings(), want.GetSchemaSettings()
	if gs.GetSchema() == ws.GetSchema() && gs.GetEncoding() == ws.GetEncoding() {
		return Action{Verb: "unchanged", What: what}, nil
	}
	if dry {
		return Action{Verb: "update", What: what, Note: "dry run; schema binding differs"}, nil
	}
	_, err = a.Client.TopicAdminClient.UpdateTopic(ctx, &pubsubpb.UpdateTopicRequest{
		Topic: want, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"schema_settings"}},
	})
	if err != nil {
		return Action{}, fmt.Errorf("broker: update %s: %w", what, err)
	}
	return Action{Verb: "update", What: what, Note: "schema binding"}, nil
}

func (a *Admin) ensureSubscription(ctx context.Context, want *pubsubpb.Subscription, dry bool) (Action, error) {
	what := "subscription " + want.Name[strings.LastIndexByte(want.Name, '/')+1:]
	got, err := a.Client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: want.Name})
	switch {
	case status.Code(err) == codes.NotFound:
		if dry {
			return Action{Verb: "create", What: what, Note: "dry run"}, nil
		}
		if _, err := a.Client.SubscriptionAdminClient.CreateSubscription(ctx, want); err != nil {
			return Action{}, fmt.Errorf("broker: create %s: %w", what, err)
		}
		return Action{Verb: "create", What: what}, nil
	case err != nil:
		return Action{}, fmt.Errorf("broker: get %s: %w", what, err)
	}
	if got.GetTopic() != want.GetTopic() {
		return Action{}, fmt.Errorf("broker: %s exists on topic %s, want %s: delete it first", what, got.GetTopic(), want.GetTopic())
	}
	var paths []string
	if got.GetAckDeadlineSeconds() != want.GetAckDeadlineSeconds() {
		paths = append(paths, "ack_deadline_seconds")
	}
	if !proto.Equal(got.GetDeadLetterPolicy(), want.GetDeadLetterPolicy()) {
		paths = append(paths, "dead_letter_policy")
	}
	// A retry policy is compared when one is wanted or one is there (one
	// set by hand on a subscription that should have none is removed).
	if (want.RetryPolicy != nil || got.RetryPolicy != nil) && !proto.Equal(got.GetRetryPolicy(), want.GetRetryPolicy()) {
		paths = append(paths, "retry_policy")
	}
	if got.GetMessageRetentionDuration().AsDuration() != want.GetMessageRetentionDuration().AsDuration() {
		paths = append(paths, "message_retention_duration")
	}
	if want.ExpirationPolicy != nil && got.GetExpirationPolicy().GetTtl().AsDuration() != want.GetExpirationPolicy().GetTtl().AsDuration() {
		paths = append(paths, "expiration_policy")
	}
	if len(paths) == 0 {
		return Action{Verb: "unchanged", What: what}, nil
	}
	note := strings.Join(paths, ", ")
	if dry {
		return Action{Verb: "update", What: what, Note: "dry run; " + note}, nil
	}
	_, err = a.Client.SubscriptionAdminClient.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
		Subscription: want, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
	})
	if err != nil {
		return Action{}, fmt.Errorf("broker: update %s: %w", what, err)
	}
	return Action{Verb: "update", What: what, Note: note}, nil
}
