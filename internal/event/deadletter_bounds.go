package event

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"unicode/utf8"

	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// Pub/Sub's limits on one message, which every dead letter must fit
// (https://cloud.google.com/pubsub/quotas#resource_limits; docs/beam-notes.md
// has the sources). A message past them is refused with INVALID_ARGUMENT,
// and the official Go publisher refuses one whose request would pass
// PubSubMaxMessageBytes before sending it (ErrOversizedMessage).
const (
	PubSubMaxMessageBytes   = 10_000_000 // data and attributes of a message; also a whole publish request
	PubSubMaxAttributes     = 100
	PubSubMaxAttrKeyBytes   = 256
	PubSubMaxAttrValueBytes = 1024
)

// What a dead letter keeps of its input, so that it always fits Pub/Sub's
// limits, however large the input (a 9 MB payload is 12 MB in base64).
const (
	// MaxDeadLetterPayload is the payload bytes kept: a payload the
	// contract could accept (maxPayloadLen) is kept whole. The
	// dead_letters table keeps the same (warehouse.BoundPayload).
	MaxDeadLetterPayload = maxPayloadLen
	// maxDeadLetterAttributes is the bytes of input attributes kept, each
	// key and value first cut to Pub/Sub's limits: 100 attributes at
	// those limits, plus the three a schema adds, fit with room to spare.
	maxDeadLetterAttributes = 256 << 10
	// MaxDeadLetterError is the bytes of the error detail kept.
	MaxDeadLetterError = 4 << 10
)

// ErrDeadLetterTooLarge is returned by DeadLetterMessage for a message that
// would not fit Pub/Sub's limits even after BoundDeadLetter (it cannot
// happen with the bounds above; callers drop such a message rather than
// retry it).
var ErrDeadLetterTooLarge = errors.New("dead letter exceeds Pub/Sub's message limits")

// BoundPayload returns payload cut to MaxDeadLetterPayload bytes, with the
// length and the SHA-256 (lowercase hex) of the whole payload. It is the
// one definition of what dead letters keep of a payload, for the dead-letter
// topic and the dead_letters table alike.
func BoundPayload(payload []byte) (kept []byte, size int64, sum string) {
	h := sha256.Sum256(payload)
	kept = payload
	if len(kept) > MaxDeadLetterPayload {
		kept = kept[:MaxDeadLetterPayload:MaxDeadLetterPayload]
	}
	return kept, int64(len(payload)), hex.EncodeToString(h[:])
}

// BoundDeadLetter returns dl, or a copy of it cut to what a dead letter
// keeps: the payload by BoundPayload (unless PayloadSha256 is already set:
// the payload was bounded before), each input attribute key and value to
// Pub/Sub's limits and all of them to maxDeadLetterAttributes
// (AttributesTruncated then says so), Error to MaxDeadLetterError, and the
// strings that become attributes to PubSubMaxAttrValueBytes. Strings are cut
// on a UTF-8 boundary.
func BoundDeadLetter(dl *inventoryv1.DeadLetter) *inventoryv1.DeadLetter {
	c := &inventoryv1.DeadLetter{
		Reason: cutString(dl.Reason, PubSubMaxAttrValueBytes), Error: cutString(dl.Error, MaxDeadLetterError),
		Payload: dl.Payload, PayloadBytes: dl.PayloadBytes, PayloadSha256: dl.PayloadSha256,
		MessageId: cutString(dl.MessageId, PubSubMaxAttrValueBytes), Stage: cutString(dl.Stage, PubSubMaxAttrValueBytes),
		Origin: cutString(dl.Origin, PubSubMaxAttrValueBytes), DeadLetteredAt: dl.DeadLetteredAt,
		PublishTime: dl.PublishTime, AttributesTruncated: dl.AttributesTruncated,
	}
	if c.PayloadSha256 == "" && dl.Payload != nil {
		c.Payload, c.PayloadBytes, c.PayloadSha256 = BoundPayload(dl.Payload)
	}
	if len(c.Payload) > MaxDeadLetterPayload { // bounded before, but not by BoundPayload
		c.Payload = c.Payload[:MaxDeadLetterPayload:MaxDeadLetterPayload]
	}
	c.Attributes, c.AttributesTruncated = boundAttributes(dl.Attributes, c.AttributesTruncated)
	return c
}

// boundAttributes cuts each key and value to Pub/Sub's limits and keeps,
// in key order, as many as fit in maxDeadLetterAttributes bytes.
func boundAttributes(attrs map[string]string, truncated bool) (map[string]string, bool) {
	if attrs == nil {
		return nil, truncated
	}
	out := make(map[string]string, len(attrs))
	budget := maxDeadLetterAttributes
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		v := attrs[k]
		ck, cv := cutString(k, PubSubMaxAttrKeyBytes), cutString(v, PubSubMaxAttrValueBytes)
		if len(ck) != len(k) || len(cv) != len(v) {
			truncated = true
		}
		if _, dup := out[ck]; dup || len(ck)+len(cv) > budget {
			truncated = true
			continue
		}
		budget -= len(ck) + len(cv)
		out[ck] = cv
	}
	return out, truncated
}

// cutString returns s cut to at most n bytes, on a rune boundary when s is
// valid UTF-8 there.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// MessageSize is the size Pub/Sub counts for a message: its data and its
// attributes' keys and values.
func MessageSize(data []byte, attrs map[string]string) int {
	n := len(data)
	for k, v := range attrs {
		n += len(k) + len(v)
	}
	return n
}
