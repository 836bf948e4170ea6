package pubsubemu

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Scenarios pstest does not support: schemas, retention and deadlines on an
// injected clock, persistence, seek, stream flow control.

const schemaV1 = `syntax = "proto3";
package test.v1;
message Adjustment {
  string event_id = 1;
  string sku = 2;
  int64 quantity = 3;
}
`

const schemaV2 = `syntax = "proto3";
package test.v1;
message Adjustment {
  string event_id = 1;
  string sku = 2;
  int64 quantity = 3;
  string source = 4;
}
`

func publishErr(t *testing.T, c *pubsub.Client, topic string, m *pubsub.Message) error {
	t.Helper()
	p := c.Publisher(topic)
	defer p.Stop()
	_, err := p.Publish(testCtx(t), m).Get(testCtx(t))
	return err
}

func TestSchemaJSONRevisionsAndRejection(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	sc := newSchemaClient(t, b.addr)
	ctx := testCtx(t)

	s1, err := sc.CreateSchema(ctx, &pb.CreateSchemaRequest{Parent: project, SchemaId: "adjustment",
		Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: schemaV1}})
	if err != nil {
		t.Fatalf("CreateSchema: %v", err)
	}
	if s1.Name != project+"/schemas/adjustment" || s1.RevisionId == "" {
		t.Fatalf("CreateSchema = %v", s1)
	}
	s2, err := sc.CommitSchema(ctx, &pb.CommitSchemaRequest{Name: s1.Name,
		Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: schemaV2}})
	if err != nil {
		t.Fatalf("CommitSchema: %v", err)
	}
	var revs []string
	for it := sc.ListSchemaRevisions(ctx, &pb.ListSchemaRevisionsRequest{Name: s1.Name}); ; {
		r, err := it.Next()
		if err != nil {
			break
		}
		revs = append(revs, r.RevisionId)
	}
	if !slices.Equal(revs, []string{s2.RevisionId, s1.RevisionId}) {
		t.Fatalf("ListSchemaRevisions = %v, want newest first [%s %s]", revs, s2.RevisionId, s1.RevisionId)
	}
	full, err := sc.GetSchema(ctx, &pb.GetSchemaRequest{Name: s1.Name + "@" + s1.RevisionId, View: pb.SchemaView_FULL})
	if err != nil || full.Definition != schemaV1 {
		t.Fatalf("GetSchema@rev1 = %v, %v", full, err)
	}

	// Topic bound to every revision, and one pinned to revision 1.
	mustTopic(t, c, &pb.Topic{Name: topicName("all-revs"), SchemaSettings: &pb.SchemaSettings{Schema: s1.Name, Encoding: pb.Encoding_JSON}})
	mustTopic(t, c, &pb.Topic{Name: topicName("rev1-only"), SchemaSettings: &pb.SchemaSettings{Schema: s1.Name, Encoding: pb.Encoding_JSON,
		FirstRevisionId: s1.RevisionId, LastRevisionId: s1.RevisionId}})
	mustSub(t, c, &pb.Subscription{Name: subName("all-sub"), Topic: topicName("all-revs")})
	mustSub(t, c, &pb.Subscription{Name: subName("rev1-sub"), Topic: topicName("rev1-only")})

	v1msg := []byte(`{"event_id":"e1","sku":"A","quantity":"3"}`)
	v2msg := []byte(`{"eventId":"e2","sku":"B","quantity":-1,"source":"pos"}`)
	publish(t, c, topicName("all-revs"), &pubsub.Message{Data: v1msg}, &pubsub.Message{Data: v2msg})
	got := pullUntil(t, c, subName("all-sub"), 2, 5*time.Second)
	for _, m := range got {
		a := m.Message.Attributes
		if a[attrSchemaName] != s1.Name || a[attrSchemaEncoding] != "JSON" || a[attrSchemaRevision] != s2.RevisionId {
			t.Errorf("schema attributes = %v, want name %s, JSON, revision %s", a, s1.Name, s2.RevisionId)
		}
	}

	publish(t, c, topicName("rev1-only"), &pubsub.Message{Data: v1msg})
	got = pullUntil(t, c, subName("rev1-sub"), 1, 5*time.Second)
	if r := got[0].Message.Attributes[attrSchemaRevision]; r != s1.RevisionId {
		t.Errorf("revision attribute = %s, want %s", r, s1.RevisionId)
	}
	for name, data := range map[string][]byte{
		"field only in revision 2": v2msg,
		"not JSON":                 []byte("not json"),
		"wrong type":               []byte(`{"sku": 5}`),
		"unknown field":            []byte(`{"colour":"red"}`),
	} {
		err := publishErr(t, c, topicName("rev1-only"), &pubsub.Message{Data: data})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: publish error = %v, want InvalidArgument", name, err)
		}
	}
	// The accepted message is outstanding; nothing rejected was delivered.
	if more := pull(t, c, subName("rev1-sub"), 10); len(more) != 0 {
		t.Errorf("rejected messages were delivered: %v", dataOf(more))
	}

	// Validation RPCs.
	if _, err := sc.ValidateSchema(ctx, &pb.ValidateSchemaRequest{Parent: project, Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: "syntax = \"proto3\"; message A { string x = 1; } message B {}"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ValidateSchema with two messages = %v, want InvalidArgument", err)
	}
	if _, err := sc.ValidateSchema(ctx, &pb.ValidateSchemaRequest{Parent: project, Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: "syntax = \"proto3\"; import \"google/protobuf/timestamp.proto\"; message A { google.protobuf.Timestamp t = 1; }"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ValidateSchema with an import = %v, want InvalidArgument", err)
	}
	if _, err := sc.ValidateSchema(ctx, &pb.ValidateSchemaRequest{Parent: project, Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: schemaV2}}); err != nil {
		t.Errorf("ValidateSchema(valid) = %v", err)
	}
	if _, err := sc.ValidateMessage(ctx, &pb.ValidateMessageRequest{Parent: project, SchemaSpec: &pb.ValidateMessageRequest_Name{Name: s1.Name}, Encoding: pb.Encoding_JSON, Message: v2msg}); err != nil {
		t.Errorf("ValidateMessage(valid) = %v", err)
	}
	if _, err := sc.ValidateMessage(ctx, &pb.ValidateMessageRequest{Parent: project, SchemaSpec: &pb.ValidateMessageRequest_Name{Name: s1.Name}, Encoding: pb.Encoding_JSON, Message: []byte("{")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ValidateMessage(invalid) = %v, want InvalidArgument", err)
	}
	var listed []string
	for it := sc.ListSchemas(ctx, &pb.ListSchemasRequest{Parent: project}); ; {
		s, err := it.Next()
		if err != nil {
			break
		}
		listed = append(listed, s.Name)
	}
	if !slices.Equal(listed, []string{s1.Name}) {
		t.Errorf("ListSchemas = %v", listed)
	}
	// A bound topic to an unknown schema is refused.
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topicName("bad-binding"), SchemaSettings: &pb.SchemaSettings{Schema: project + "/schemas/nope", Encoding: pb.Encoding_JSON}}); status.Code(err) != codes.NotFound {
		t.Errorf("CreateTopic bound to a missing schema = %v, want NotFound", err)
	}
	if err := sc.DeleteSchema(ctx, &pb.DeleteSchemaRequest{Name: s1.Name}); err != nil {
		t.Fatalf("DeleteSchema: %v", err)
	}
	tp, err := c.TopicAdminClient.GetTopic(ctx, &pb.GetTopicRequest{Topic: topicName("all-revs")})
	if err != nil || tp.SchemaSettings.Schema != deletedSchema {
		t.Errorf("topic after schema deletion = %v, %v", tp, err)
	}
}

func TestSchemaBinary(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	sc := newSchemaClient(t, b.addr)
	ctx := testCtx(t)
	s1, err := sc.CreateSchema(ctx, &pb.CreateSchemaRequest{Parent: project, SchemaId: "adjustment",
		Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: schemaV1}})
	if err != nil {
		t.Fatalf("CreateSchema: %v", err)
	}
	mustTopic(t, c, &pb.Topic{Name: topicName("bin"), SchemaSettings: &pb.SchemaSettings{Schema: s1.Name, Encoding: pb.Encoding_BINARY}})
	mustSub(t, c, &pb.Subscription{Name: subName("bin-sub"), Topic: topicName("bin")})

	compiledV1, err := compileSchema(ctx, pb.Schema_PROTOCOL_BUFFER, schemaV1)
	if err != nil {
		t.Fatal(err)
	}
	desc := compiledV1.msg
	m := dynamicpb.NewMessage(desc)
	m.Set(desc.Fields().ByName("sku"), protoValueString("SKU-1"))
	m.Set(desc.Fields().ByName("quantity"), protoValueInt(7))
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, c, topicName("bin"), &pubsub.Message{Data: data})
	got := pullUntil(t, c, subName("bin-sub"), 1, 5*time.Second)
	if a := got[0].Message.Attributes; a[attrSchemaEncoding] != "BINARY" || a[attrSchemaRevision] != s1.RevisionId {
		t.Errorf("attributes = %v", a)
	}
	back := dynamicpb.NewMessage(desc)
	if err := proto.Unmarshal(got[0].Message.Data, back); err != nil || back.Get(desc.Fields().ByName("sku")).String() != "SKU-1" {
		t.Errorf("delivered data does not round-trip: %v", err)
	}
	for name, bad := range map[string][]byte{
		"truncated varint": {0x18, 0xff},
		"JSON in binary":   []byte(`{"sku":"A"}`),
	} {
		if err := publishErr(t, c, topicName("bin"), &pubsub.Message{Data: bad}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: publish error = %v, want InvalidArgument", name, err)
		}
	}
}

func TestRetentionWithInjectedClock(t *testing.T) {
	clk := newFakeClock()
	b := startEmu(t, Options{Now: clk.Now})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("short"), Topic: topicName("topic"), MessageRetentionDuration: durationpb.New(10 * time.Minute)})
	mustSub(t, c, &pb.Subscription{Name: subName("default"), Topic: topicName("topic")})
	sp, err := c.SubscriptionAdminClient.GetSubscription(testCtx(t), &pb.GetSubscriptionRequest{Subscription: subName("default")})
	if err != nil || sp.MessageRetentionDuration.AsDuration() != 7*24*time.Hour {
		t.Fatalf("default retention = %v, %v; want 7 days", sp.GetMessageRetentionDuration(), err)
	}

	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("old")})
	clk.Advance(5 * time.Minute)
	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("new")})
	clk.Advance(6 * time.Minute) // "old" is 11 minutes old
	got := pull(t, c, subName("short"), 10)
	if d := dataOf(got); !slices.Equal(d, []string{"new"}) {
		t.Fatalf("short retention delivered %v, want [new]", d)
	}
	// An unacked outstanding message past retention is not redelivered.
	clk.Advance(5 * time.Minute)
	modack(t, c, subName("short"), 0, got[0].AckId)
	if more := pull(t, c, subName("short"), 10); len(more) != 0 {
		t.Fatalf("expired message redelivered: %v", dataOf(more))
	}

	// The default subscription keeps both for 7 days, then drops them.
	clk.Advance(6 * 24 * time.Hour)
	got = pull(t, c, subName("default"), 10)
	if len(got) != 2 {
		t.Fatalf("default retention delivered %v after 6 days, want both", dataOf(got))
	}
	modack(t, c, subName("default"), 0, ackIDs(got)...)
	clk.Advance(24 * time.Hour)
	if more := pull(t, c, subName("default"), 10); len(more) != 0 {
		t.Fatalf("delivered %v after 7 days", dataOf(more))
	}
	// Nothing is held in memory for either subscription.
	for _, name := range []string{subName("short"), subName("default")} {
		sub, _ := b.emu.findSub(name)
		sub.mu.Lock()
		n := sub.ready.len() + sub.redeliver.len() + len(sub.outstanding) + len(sub.timers)
		sub.mu.Unlock()
		if n != 0 {
			t.Errorf("%s still holds %d messages after expiry", name, n)
		}
	}
}

func TestAckDeadlineAndModifyWithInjectedClock(t *testing.T) {
	clk := newFakeClock()
	b := startEmu(t, Options{Now: clk.Now})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"), AckDeadlineSeconds: 10})
	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("x")})
	first := pull(t, c, subName("sub"), 1)
	if len(first) != 1 {
		t.Fatalf("pulled %d", len(first))
	}
	clk.Advance(5 * time.Second)
	modack(t, c, subName("sub"), 30, first[0].AckId) // now due at +35 s
	clk.Advance(20 * time.Second)                    // +25 s: past the original deadline
	if got := pull(t, c, subName("sub"), 1); len(got) != 0 {
		t.Fatalf("redelivered before the extended deadline")
	}
	clk.Advance(11 * time.Second) // +36 s
	again := pull(t, c, subName("sub"), 1)
	if len(again) != 1 || again[0].AckId == first[0].AckId {
		t.Fatalf("after the extended deadline pulled %v", again)
	}
	ack(t, c, subName("sub"), first[0].AckId) // stale: ignored
	clk.Advance(11 * time.Second)
	third := pull(t, c, subName("sub"), 1)
	if len(third) != 1 {
		t.Fatalf("a stale ack id acked the message")
	}
	ack(t, c, subName("sub"), third[0].AckId)
	clk.Advance(time.Minute)
	if got := pull(t, c, subName("sub"), 1); len(got) != 0 {
		t.Fatalf("acked message redelivered")
	}
}

func TestRetryPolicyBackoff(t *testing.T) {
	clk := newFakeClock()
	b := startEmu(t, Options{Now: clk.Now})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"),
		RetryPolicy: &pb.RetryPolicy{MinimumBackoff: durationpb.New(10 * time.Second), MaximumBackoff: durationpb.New(60 * time.Second)}})
	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("x")})
	got := pull(t, c, subName("sub"), 1)
	modack(t, c, subName("sub"), 0, got[0].AckId)
	if again := pull(t, c, subName("sub"), 1); len(again) != 0 {
		t.Fatal("nacked message redelivered before the minimum backoff")
	}
	clk.Advance(10 * time.Second)
	got = pull(t, c, subName("sub"), 1)
	if len(got) != 1 {
		t.Fatal("nacked message not redelivered after the backoff")
	}
	modack(t, c, subName("sub"), 0, got[0].AckId) // second attempt: 20 s backoff
	clk.Advance(10 * time.Second)
	if again := pull(t, c, subName("sub"), 1); len(again) != 0 {
		t.Fatal("backoff did not grow")
	}
	clk.Advance(10 * time.Second)
	if again := pull(t, c, subName("sub"), 1); len(again) != 1 {
		t.Fatal("not redelivered after the doubled backoff")
	}
}

func TestRestartWithDataDirLosesNothing(t *testing.T) {
	dir := t.TempDir()
	s1, err := Start("127.0.0.1:0", Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newClient(t, s1.Addr())
	sc := newSchemaClient(t, s1.Addr())
	schemaName := project + "/schemas/adjustment"
	if _, err := sc.CreateSchema(testCtx(t), &pb.CreateSchemaRequest{Parent: project, SchemaId: "adjustment",
		Schema: &pb.Schema{Type: pb.Schema_PROTOCOL_BUFFER, Definition: schemaV1}}); err != nil {
		t.Fatalf("CreateSchema: %v", err)
	}
	mustTopic(t, c, &pb.Topic{Name: topicName("topic"), SchemaSettings: &pb.SchemaSettings{Schema: schemaName, Encoding: pb.Encoding_JSON}})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"), AckDeadlineSeconds: 60})
	const n = 1000
	msgs := make([]*pubsub.Message, n)
	for i := range msgs {
		msgs[i] = &pubsub.Message{Data: fmt.Appendf(nil, `{"event_id":"e%d","sku":"S","quantity":"1"}`, i)}
	}
	ids := publish(t, c, topicName("topic"), msgs...)
	got := pullUntil(t, c, subName("sub"), 300, 5*time.Second)
	ack(t, c, subName("sub"), ackIDs(got[:200])...) // 100 stay outstanding, unacked
	acked := map[string]bool{}
	for _, m := range got[:200] {
		acked[m.Message.MessageId] = true
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b := startEmu(t, Options{DataDir: dir})
	c2 := newClient(t, b.addr)
	var want []string
	for _, id := range ids {
		if !acked[id] {
			want = append(want, id)
		}
	}
	var gotIDs []string
	for len(gotIDs) < len(want) {
		page := pull(t, c2, subName("sub"), 1000)
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			gotIDs = append(gotIDs, m.Message.MessageId)
			if m.Message.Attributes[attrSchemaName] != schemaName {
				t.Fatalf("restored message lost its attributes: %v", m.Message.Attributes)
			}
		}
		ack(t, c2, subName("sub"), ackIDs(page)...)
	}
	sort.Strings(gotIDs)
	sort.Strings(want)
	if !slices.Equal(gotIDs, want) {
		t.Fatalf("after restart got %d messages, want the %d unacked ones", len(gotIDs), len(want))
	}
	// Schema enforcement and id sequence survive the restart.
	if err := publishErr(t, c2, topicName("topic"), &pubsub.Message{Data: []byte("nope")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("publish after restart = %v, want InvalidArgument", err)
	}
	newIDs := publish(t, c2, topicName("topic"), &pubsub.Message{Data: []byte(`{"sku":"T"}`)})
	if slices.Contains(ids, newIDs[0]) {
		t.Errorf("message id %s reused after restart", newIDs[0])
	}
}

func TestSeekToTimeReplaysRetainedMessages(t *testing.T) {
	clk := newFakeClock()
	b := startEmu(t, Options{Now: clk.Now})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"), RetainAckedMessages: true})
	t0 := clk.Now()
	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("a")}, &pubsub.Message{Data: []byte("b")})
	clk.Advance(time.Minute)
	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("c")})
	got := pull(t, c, subName("sub"), 10)
	ack(t, c, subName("sub"), ackIDs(got)...)
	if more := pull(t, c, subName("sub"), 10); len(more) != 0 {
		t.Fatalf("delivered %v after acking everything", dataOf(more))
	}
	seek := func(at time.Time) {
		t.Helper()
		if _, err := c.SubscriptionAdminClient.Seek(testCtx(t), &pb.SeekRequest{Subscription: subName("sub"), Target: &pb.SeekRequest_Time{Time: timestamppb.New(at)}}); err != nil {
			t.Fatalf("Seek: %v", err)
		}
	}
	seek(t0.Add(30 * time.Second))
	got = pull(t, c, subName("sub"), 10)
	if d := dataOf(got); !slices.Equal(d, []string{"c"}) {
		t.Fatalf("after seek to t0+30s got %v, want [c]", d)
	}
	seek(t0)
	got = pull(t, c, subName("sub"), 10)
	if d := dataOf(got); !slices.Equal(d, []string{"a", "b", "c"}) {
		t.Fatalf("after seek to t0 got %v, want [a b c]", d)
	}
}

func TestStreamingPullHonoursFlowControl(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic")})
	msgs := make([]*pubsub.Message, 20)
	for i := range msgs {
		msgs[i] = &pubsub.Message{Data: fmt.Appendf(nil, "%d", i)}
	}
	publish(t, c, topicName("topic"), msgs...)

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	stream, err := c.SubscriptionAdminClient.StreamingPull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.StreamingPullRequest{Subscription: subName("sub"), StreamAckDeadlineSeconds: 60, MaxOutstandingMessages: 5}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var received []*pb.ReceivedMessage
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			received = append(received, resp.ReceivedMessages...)
			mu.Unlock()
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(received) }
	eventually(t, 5*time.Second, "5 messages", func() bool { return count() == 5 })
	// The server holds back the rest while 5 are outstanding: ask the
	// subscription directly rather than waiting.
	sub, _ := b.emu.findSub(subName("sub"))
	sub.mu.Lock()
	outstanding, ready := len(sub.outstanding), sub.ready.len()
	sub.mu.Unlock()
	if outstanding != 5 || ready != 15 {
		t.Fatalf("outstanding=%d ready=%d, want 5 and 15", outstanding, ready)
	}
	mu.Lock()
	first := []string{received[0].AckId, received[1].AckId}
	mu.Unlock()
	if err := stream.Send(&pb.StreamingPullRequest{AckIds: first}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "2 more after 2 acks", func() bool { return count() == 7 })
	if n := count(); n != 7 {
		t.Fatalf("received %d, want 7", n)
	}
}

func TestEnvVarClientAndMemoryFreedOnAck(t *testing.T) {
	b := startEmu(t, Options{})
	t.Setenv("PUBSUB_EMULATOR_HOST", b.addr)
	c, err := pubsub.NewClient(context.Background(), "test-proj")
	if err != nil {
		t.Fatalf("NewClient via PUBSUB_EMULATOR_HOST: %v", err)
	}
	defer c.Close()
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic")})
	const n = 2000
	msgs := make([]*pubsub.Message, n)
	for i := range msgs {
		msgs[i] = &pubsub.Message{Data: fmt.Appendf(nil, "%d", i)}
	}
	publish(t, c, topicName("topic"), msgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]bool{}
	if err := c.Subscriber(subName("sub")).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		seen[m.ID] = true
		if len(seen) == n {
			cancel()
		}
		mu.Unlock()
	}); err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(seen) != n {
		t.Fatalf("received %d of %d", len(seen), n)
	}
	sub, _ := b.emu.findSub(subName("sub"))
	eventually(t, 5*time.Second, "every ack to free its message", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.outstanding) == 0 && len(sub.timers) == 0 && sub.ready.len() == 0 && sub.redeliver.len() == 0 && sub.acked.len() == 0
	})
}

func protoValueString(s string) protoreflect.Value { return protoreflect.ValueOfString(s) }
func protoValueInt(n int64) protoreflect.Value     { return protoreflect.ValueOfInt64(n) }

func TestInvalidSubscriptionSettingsRejected(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	for name, sp := range map[string]*pb.Subscription{
		"bad filter":         {Name: subName("s-filter"), Topic: topicName("topic"), Filter: `attributes.kind = sale`},
		"missing topic":      {Name: subName("s-topic"), Topic: topicName("nope")},
		"ack deadline > 600": {Name: subName("s-ack"), Topic: topicName("topic"), AckDeadlineSeconds: 601},
		"retention < 10m":    {Name: subName("s-ret"), Topic: topicName("topic"), MessageRetentionDuration: durationpb.New(time.Minute)},
		"dlq attempts < 5": {Name: subName("s-dlq"), Topic: topicName("topic"),
			DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: topicName("topic"), MaxDeliveryAttempts: 2}},
	} {
		_, err := c.SubscriptionAdminClient.CreateSubscription(testCtx(t), sp)
		if code := status.Code(err); code != codes.InvalidArgument && code != codes.NotFound {
			t.Errorf("%s: CreateSubscription = %v, want InvalidArgument or NotFound", name, err)
		}
	}
	if _, err := c.TopicAdminClient.CreateTopic(testCtx(t), &pb.Topic{Name: "topics/x"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateTopic with a bad name = %v, want InvalidArgument", err)
	}
}

func TestRestartKeepsDeliveryAttempts(t *testing.T) {
	dir := t.TempDir()
	s1, err := Start("127.0.0.1:0", Options{DataDir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := newClient(t, s1.Addr())
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustTopic(t, c, &pb.Topic{Name: topicName("dlq")})
	mustSub(t, c, &pb.Subscription{Name: subName("dlq-sub"), Topic: topicName("dlq")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic"),
		DeadLetterPolicy: &pb.DeadLetterPolicy{DeadLetterTopic: topicName("dlq"), MaxDeliveryAttempts: 5}})
	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("poison")})
	for i := 0; i < 3; i++ {
		got := pullUntil(t, c, subName("sub"), 1, 5*time.Second)
		modack(t, c, subName("sub"), 0, got[0].AckId)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b := startEmu(t, Options{DataDir: dir})
	c2 := newClient(t, b.addr)
	for want := int32(4); want <= 5; want++ {
		got := pullUntil(t, c2, subName("sub"), 1, 5*time.Second)
		if got[0].DeliveryAttempt != want {
			t.Fatalf("delivery_attempt after restart = %d, want %d", got[0].DeliveryAttempt, want)
		}
		modack(t, c2, subName("sub"), 0, got[0].AckId)
	}
	dead := pullUntil(t, c2, subName("dlq-sub"), 1, 5*time.Second)
	if dead[0].Message.Attributes["CloudPubSubDeadLetterSourceDeliveryCount"] != "5" {
		t.Errorf("dead letter attributes = %v", dead[0].Message.Attributes)
	}
}

func TestPullLongPollEndsBeforeCallerDeadline(t *testing.T) {
	b := startEmu(t, Options{})
	c := newClient(t, b.addr)
	mustTopic(t, c, &pb.Topic{Name: topicName("topic")})
	mustSub(t, c, &pb.Subscription{Name: subName("sub"), Topic: topicName("topic")})
	// An empty subscription answers empty before a 1 s deadline instead of failing it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := c.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: subName("sub"), MaxMessages: 10})
	if err != nil || len(resp.ReceivedMessages) != 0 {
		t.Fatalf("Pull on an empty subscription = %v, %v; want an empty response", resp, err)
	}
	// A publish during the long poll wakes it.
	done := make(chan []*pb.ReceivedMessage)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: subName("sub"), MaxMessages: 10})
		if err != nil {
			t.Errorf("Pull: %v", err)
		}
		done <- resp.GetReceivedMessages()
	}()
	publish(t, c, topicName("topic"), &pubsub.Message{Data: []byte("wake")})
	if got := <-done; len(got) != 1 {
		t.Fatalf("long poll returned %d messages", len(got))
	}
}
