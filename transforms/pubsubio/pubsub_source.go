package pubsubio

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn5x2[context.Context, *sdf.ManualWatermarkEstimator, *sdf.LockRTracker, []byte, func(beam.EventTime, Batch),
		sdf.ProcessContinuation, error](&pullFn{})
	register.Emitter2[beam.EventTime, Batch]()
	beam.RegisterType(reflect.TypeOf(pullRestriction{}))
	beam.RegisterCoder(reflect.TypeOf(pullRestriction{}), encodePullRestriction, decodePullRestriction)
}

// PullOptions configures Read.
type PullOptions struct {
	Project      string
	Subscription string // an id or projects/P/subscriptions/S
	// MaxMessages is the most messages one bundle takes
	// (DefaultMaxMessages), gathered from as many pulls as it takes, each
	// for at most maxPullMessages. Keep a bundle well within the ack
	// deadline.
	MaxMessages int
	// MaxBatchBytes stops the gathering once the batch's payloads and
	// attributes hold this many bytes (default 16 MiB), so that a flood
	// of large messages travels through the job in batches of bounded
	// size rather than of MaxMessages times Pub/Sub's 10 MB.
	MaxBatchBytes int
	// MaxBatchWait is how long one bundle gathers messages before it
	// emits them as one Batch (DefaultMaxBatchWait), while the job is busy with
	// the batches before: the most latency paid for batching. When the job
	// has stored all it was given, a batch goes at once.
	MaxBatchWait time.Duration
	// PollInterval is how long to wait before pulling again after an empty
	// or failed pull (default 100ms). Every pull answers at once rather than
	// wait on the server for a message: a source's watermark moves only
	// between pulls, and Prism runs a stateful stage with a side input only
	// as its input watermark, the slower source's, moves. The stream's stock
	// stage reads the events and the threshold changes; while the idle
	// threshold subscription sat in a long poll (the local Pub/Sub's
	// longest), the events waited with it (figures: docs/benchmarks.md#figures-behind-the-code).
	// A shorter deadline on the long poll would lose an answer now and then
	// instead (see pull). Upstream report: docs/beam-notes.md#upstream-issues-ready-to-file, item 4.
	PollInterval time.Duration
	// AckDeadline is what the source extends the deadline of a pulled
	// message to, every third of it, until the message is acked (default:
	// the subscription's ack deadline). See lease.go.
	AckDeadline time.Duration
	// MaxExtension is how long after its pull a message's deadline is still
	// extended (default 10 min); after that Pub/Sub delivers it again.
	MaxExtension time.Duration
	// Flight is the ID of the Flight in this process that tracks what the
	// source emitted ("": the process's default Flight).
	Flight string
	// MaxOutstanding is how many messages the Flight may have emitted and
	// not yet stored before the source stops pulling (default 20,000): flow
	// control, so that a backlog waits in Pub/Sub rather than in the
	// runner's memory between stages.
	MaxOutstanding int
	// MaxOutstandingBytes bounds the same by the messages' payloads and
	// attributes (default 256 MiB, what loaders/broker's consumer allows):
	// a backlog of large messages (Pub/Sub takes up to 10 MB each) would
	// otherwise fill the job's memory well before 20,000 messages. A
	// batch is gathered only while it fits in what is left, so the bound
	// is passed by at most one Pull's answer (10 MiB locally).
	MaxOutstandingBytes int
}

// Read is a composite transform that reads a Pub/Sub subscription
// with synchronous Pull from an unbounded splittable DoFn, and returns an
// unbounded PCollection of Batch, one per bundle (up to MaxMessages messages
// gathered for up to MaxBatchWait), timestamped with the oldest publish time
// of the batch.
//
// Ack after storing: the source never acks. Each Message carries its ack id
// through decoding and the stock DoFn to commit.Write, which acks it once
// everything the message caused is stored. A crash before that leaves it
// unacked: Pub/Sub redelivers it and the stock ledgers, restored from the
// warehouse at start, see the stored ones as duplicates. (Acking when the
// source's own bundle commits would lose messages on Prism: a killed job
// drops elements it held between stages. Beam Go v2.77.0's
// BundleFinalization would not help either: it loses callbacks on Prism,
// see docs/beam-notes.md.) Until the sink acks, the source extends the
// messages' ack deadlines, as the client library's Receive does (lease.go),
// so a slow job is not sent its messages again meanwhile.
func Read(s beam.Scope, o PullOptions) beam.PCollection {
	s = s.Scope("pubsubio.Read")
	if o.Project == "" || o.Subscription == "" {
		panic("pubsubio.Read: project and subscription are required")
	}
	o.Subscription = SubscriptionPath(o.Project, o.Subscription)
	fn := &pullFn{PullOptions: o}
	return beam.ParDo(s, fn, beam.Impulse(s))
}

// SubscriptionPath returns projects/P/subscriptions/S for an id or a path.
func SubscriptionPath(project, sub string) string {
	if strings.HasPrefix(sub, "projects/") {
		return sub
	}
	return "projects/" + project + "/subscriptions/" + sub
}

// TopicPath returns projects/P/topics/T for an id or a path.
func TopicPath(project, topic string) string {
	if strings.HasPrefix(topic, "projects/") {
		return topic
	}
	return "projects/" + project + "/topics/" + topic
}

// pullRestriction is the restriction of the Pub/Sub source. It never ends
// and holds nothing: the sink acknowledges (see Read).
type pullRestriction struct{}

// encodePullRestriction writes one zero byte: what an empty list of ack ids
// encoded to when the restriction carried them.
func encodePullRestriction(pullRestriction) []byte { return []byte{0} }

func decodePullRestriction([]byte) (pullRestriction, error) { return pullRestriction{}, nil }

// pullTracker claims pulls. It accepts only the checkpoint split (fraction
// 0); dynamic splits are refused, since a pull cannot be divided after the
// fact.
type pullTracker struct {
	claimed int
	done    bool
}

var _ sdf.BoundableRTracker = (*pullTracker)(nil)

// TryClaim claims a pull; pos is the []string of its ack ids.
func (t *pullTracker) TryClaim(pos any) bool {
	if t.done {
		return false
	}
	t.claimed += len(pos.([]string))
	return true
}

func (t *pullTracker) GetError() error { return nil }

func (t *pullTracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if t.done || fraction > 0 {
		return pullRestriction{}, nil, nil
	}
	t.done = true
	return pullRestriction{}, pullRestriction{}, nil
}

func (t *pullTracker) GetProgress() (done, remaining float64) {
	return float64(t.claimed), 1
}

func (t *pullTracker) IsDone() bool        { return t.done }
func (t *pullTracker) GetRestriction() any { return pullRestriction{} }
func (t *pullTracker) IsBounded() bool     { return false }

type pullFn struct {
	PullOptions // Subscription as a path; the defaults are set in Setup

	client *pubsub.Client
	flight *Flight
	leases *leaseKeeper
}

func (f *pullFn) Setup(ctx context.Context) error {
	c, err := pubsub.NewClient(ctx, f.Project)
	if err != nil {
		return fmt.Errorf("pubsub.NewClient: %w", err)
	}
	f.client = c
	if f.MaxMessages <= 0 {
		f.MaxMessages = DefaultMaxMessages
	}
	if f.MaxBatchBytes <= 0 {
		f.MaxBatchBytes = defaultMaxBatchBytes
	}
	if f.MaxBatchWait <= 0 {
		f.MaxBatchWait = DefaultMaxBatchWait
	}
	if f.PollInterval <= 0 {
		f.PollInterval = 100 * time.Millisecond
	}
	if f.MaxExtension <= 0 {
		f.MaxExtension = 10 * time.Minute
	}
	if f.MaxOutstanding <= 0 {
		f.MaxOutstanding = defaultMaxOutstanding
	}
	if f.MaxOutstandingBytes <= 0 {
		f.MaxOutstandingBytes = defaultMaxOutstandingBytes
	}
	if f.AckDeadline <= 0 {
		sub, err := c.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: f.Subscription})
		if err != nil {
			// Extending to the minimum deadline works whatever the
			// subscription's: a crash is then redelivered sooner.
			slog.Warn("pubsub source: cannot read the subscription's ack deadline; extending to 10 s", "subscription", f.Subscription, "err", err)
		} else {
			f.AckDeadline = time.Duration(sub.GetAckDeadlineSeconds()) * time.Second
		}
	}
	if f.flight, err = LookupFlight(f.Flight); err != nil {
		return err
	}
	f.leases = startLeases(f.flight, c, f.Subscription, f.AckDeadline, f.MaxExtension)
	return nil
}

func (f *pullFn) Teardown() error {
	if f.leases != nil {
		f.leases.close()
	}
	if f.client == nil {
		return nil
	}
	return f.client.Close()
}

func (f *pullFn) CreateInitialRestriction(_ []byte) pullRestriction { return pullRestriction{} }

func (f *pullFn) SplitRestriction(_ []byte, r pullRestriction) []pullRestriction {
	return []pullRestriction{r}
}

func (f *pullFn) RestrictionSize(_ []byte, r pullRestriction) float64 { return 1 }

func (f *pullFn) CreateTracker(pullRestriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(&pullTracker{})
}

func (f *pullFn) CreateWatermarkEstimator() *sdf.ManualWatermarkEstimator {
	return &sdf.ManualWatermarkEstimator{}
}

// pullStep is how long the source waits between pulls that return at once
// while it gathers a batch; pullTimeout is the deadline of one Pull call.
const (
	pullStep    = 10 * time.Millisecond
	pullTimeout = 30 * time.Second
)

// DefaultMaxMessages is the default of PullOptions.MaxMessages.
//
// A bigger batch means fewer bundles, and every bundle costs the same
// whatever it holds: Prism's handling of the source's bundle (in v2.77.0
// its wait for the bundle's answer spins a core from the end of the
// bundle's data to the answer, docs/beam-notes.md#speed-on-prism), and
// the stock stage's state round trips, a fixed number per shard element
// (a batch becomes one element per shard). Measured on one machine
// (docs/benchmarks.md, "Fifth step"): 5,000 ran 25-30% faster under a
// backlog than 1,000, with the same latency at 20,000 events/s, as a
// batch only grows while the job is busy with the one before (see
// gather); 10,000 ran no faster than 5,000.
const DefaultMaxMessages = 5000

// DefaultMaxBatchWait is the default of PullOptions.MaxBatchWait.
const DefaultMaxBatchWait = 200 * time.Millisecond

// maxPullMessages is the most messages one Pull asks for, what the local
// Pub/Sub answers at most; a bigger batch is gathered from several pulls.
const maxPullMessages = 1000

// Defaults of PullOptions.MaxBatchBytes, MaxOutstanding and
// MaxOutstandingBytes.
const (
	defaultMaxBatchBytes       = 16 << 20
	defaultMaxOutstanding      = 20_000
	defaultMaxOutstandingBytes = 256 << 20
)

// pull makes one Pull call for up to n messages, answered at once, even
// empty (see PollInterval).
//
// The call's deadline is far longer than any answer takes. A Pull whose
// deadline passes while the server answers loses the messages of that
// answer until their ack deadline: no one holds their ack ids, so no lease
// extends them and nothing acks them. With a deadline of a batch's 200 ms,
// a loaded machine lost a few batches a minute that way; each was stored a
// minute late.
func (f *pullFn) pull(ctx context.Context, n int) (*pubsubpb.PullResponse, error) {
	pctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()
	return f.client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{
		Subscription: f.Subscription, MaxMessages: int32(min(n, maxPullMessages)),
		ReturnImmediately: true, //nolint:staticcheck // deprecated, but see PollInterval
	})
}

// ProcessElement pulls for up to MaxBatchWait and emits what it got as one
// Batch, each message with its ack id.
func (f *pullFn) ProcessElement(ctx context.Context, we *sdf.ManualWatermarkEstimator, rt *sdf.LockRTracker, _ []byte,
	emit func(beam.EventTime, Batch)) (sdf.ProcessContinuation, error) {
	f.leases.touch()
	// Counted as pulling until the batch is emitted, so that a drain waits
	// for a pull that began before its pause (counted before the check).
	f.flight.pulling.Add(1)
	defer f.flight.pulling.Add(-1)
	if f.flight.paused.Load() {
		return sdf.ResumeProcessingIn(f.PollInterval), nil
	}
	room, roomBytes, ok := f.room()
	if !ok {
		return sdf.ResumeProcessingIn(pullStep), nil
	}
	// Pull only while the restriction can still be claimed.
	if !rt.TryClaim([]string(nil)) {
		return sdf.StopProcessing(), nil
	}
	b, acks, oldest, err := f.gather(ctx, room, roomBytes)
	if err != nil {
		return sdf.StopProcessing(), err
	}
	if len(b.Messages) == 0 {
		return f.idle(ctx, we)
	}
	if !rt.TryClaim(acks) {
		// The restriction was split while we pulled: these messages cannot be
		// emitted from this bundle. Nack them so they come back at once
		// rather than after the ack deadline.
		f.nack(ctx, acks)
		return sdf.StopProcessing(), nil
	}
	f.leases.hold(acks)
	f.flight.emitted(&b)
	emit(mtime.FromTime(oldest), b)
	we.UpdateWatermark(oldest)
	return sdf.ResumeProcessingIn(0), nil
}

// room returns how many messages, and how many bytes of them, the next
// batch may take (flow control: MaxOutstanding and MaxOutstandingBytes
// less what the Flight holds, and at most MaxMessages and MaxBatchBytes);
// ok is false while the job is behind: then the source waits for room
// for a whole batch, or half the bound, rather than pull a sliver (at the
// limit, slivers of a few dozen messages each paid a full pass through the
// job).
func (f *pullFn) room() (messages, bytes int, ok bool) {
	n, size := f.flight.outstanding()
	messages = min(f.MaxMessages, f.MaxOutstanding-n)
	bytes = min(f.MaxBatchBytes, f.MaxOutstandingBytes-size)
	ok = messages >= min(f.MaxMessages, f.MaxOutstanding/2) && bytes >= min(f.MaxBatchBytes, f.MaxOutstandingBytes/2)
	return messages, bytes, ok
}

// gather pulls up to limit messages, and about maxBytes of them, into one
// Batch, with their ack ids and the oldest publish time; the error is the
// context's, once it is done.
//
// It pulls until the batch is full (limit messages, or maxBytes, passed by
// at most the last Pull's answer),
// MaxBatchWait has passed, or the job has stored everything emitted before
// (group commit): while the job is busy this gathers many small pulls into
// one element, which is what keeps Prism's per-element cost down; while it
// is idle a message goes on at once rather than wait for a batch that
// would not be stored sooner.
func (f *pullFn) gather(ctx context.Context, limit, maxBytes int) (Batch, []string, time.Time, error) {
	deadline := time.Now().Add(f.MaxBatchWait)
	var b Batch
	var acks []string
	oldest := time.Now()
	size := 0
	for first := true; len(b.Messages) < limit && size < maxBytes; first = false {
		if !first && (time.Until(deadline) <= 0 || f.flight.unacked() == 0) {
			break
		}
		resp, err := f.pull(ctx, limit-len(b.Messages))
		if err != nil {
			if ctx.Err() != nil {
				return b, acks, oldest, ctx.Err()
			}
			slog.Warn("pubsub source: pull failed", "subscription", f.Subscription, "err", err)
			break
		}
		got := resp.GetReceivedMessages()
		for _, rm := range got {
			acks = append(acks, rm.GetAckId())
			pm := rm.GetMessage()
			pt := pm.GetPublishTime().AsTime()
			if pt.Before(oldest) {
				oldest = pt
			}
			b.Messages = append(b.Messages, Message{ID: pm.GetMessageId(), Data: pm.GetData(), Attributes: pm.GetAttributes(),
				PublishTime: pt.UnixMicro(), AckID: rm.GetAckId()})
			size += b.Messages[len(b.Messages)-1].size()
		}
		if len(b.Messages) == 0 {
			break // nothing to pull
		}
		if len(got) == 0 {
			select {
			case <-ctx.Done():
				return b, acks, oldest, ctx.Err()
			case <-time.After(min(pullStep, time.Until(deadline))):
			}
		}
	}
	return b, acks, oldest, nil
}

// idle waits PollInterval after a pull that found nothing.
//
// It waits here, not in the runner. Prism keeps a delayed residual as a
// processing-time event, and the idle stack then took several times the
// CPU (docs/benchmarks.md#figures-behind-the-code; upstream report:
// docs/beam-notes.md#upstream-issues-ready-to-file, item 5).
func (f *pullFn) idle(ctx context.Context, we *sdf.ManualWatermarkEstimator) (sdf.ProcessContinuation, error) {
	select {
	case <-ctx.Done():
		return sdf.StopProcessing(), ctx.Err()
	case <-time.After(f.PollInterval):
	}
	we.UpdateWatermark(time.Now().Add(-f.MaxBatchWait))
	return sdf.ResumeProcessingIn(0), nil
}

// nack hands the messages of acks back to the subscription at once (ack
// deadline 0), even once ctx is done.
func (f *pullFn) nack(ctx context.Context, acks []string) {
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := f.client.SubscriptionAdminClient.ModifyAckDeadline(nctx, &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: f.Subscription, AckIds: acks, AckDeadlineSeconds: 0}); err != nil {
		slog.Warn("pubsub source: nack failed; the messages come back after their deadline", "messages", len(acks), "err", err)
	}
}
