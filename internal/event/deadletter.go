package event

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
)

// Attributes of every message on the dead-letter topic, whoever published it
// (the publisher, the consumer or the streaming job), so that one
// subscription filter such as attributes.dead_letter_reason = "wrong_sign"
// sees them all. proto/inventory/v1/dead_letter.proto documents them.
const (
	AttrDeadLetterReason = "dead_letter_reason" // a Code constant
	AttrDeadLetterStage  = "dead_letter_stage"  // a Stage constant
	AttrDeadLetterOrigin = "dead_letter_origin" // where the input came from
)

// DeadLetterAttrKeys lists the attribute keys of a dead-letter message.
var DeadLetterAttrKeys = []string{AttrDeadLetterOrigin, AttrDeadLetterReason, AttrDeadLetterStage}

// Dead-letter stages: where the input was refused.
const (
	StagePublish   = "publish"
	StageConsume   = "consume"
	StageStream    = "stream"
	StageWarehouse = "warehouse"
)

// DeadLetterMessage returns the data (the DeadLetter envelope in JSON) and
// the attributes of the dead-letter topic's message for dl. It is the one
// builder of that message.
// Strings that are not valid UTF-8 (an error quoting raw input, attributes
// as received) are repaired with U+FFFD, since JSON cannot carry them; the
// payload travels as bytes. Then dl is cut to Pub/Sub's limits before it is
// built (BoundDeadLetter), so the message always fits them; the error is
// ErrDeadLetterTooLarge if it still would not.
func DeadLetterMessage(dl *inventoryv1.DeadLetter) (data []byte, attrs map[string]string, err error) {
	dl = BoundDeadLetter(validUTF8(dl))
	data, err = protojson.MarshalOptions{UseProtoNames: true}.Marshal(dl)
	if err != nil {
		return nil, nil, fmt.Errorf("encode dead letter %s: %w", dl.GetReason(), err)
	}
	attrs = map[string]string{
		AttrDeadLetterReason: dl.GetReason(),
		AttrDeadLetterStage:  dl.GetStage(),
		AttrDeadLetterOrigin: dl.GetOrigin(),
	}
	if n := MessageSize(data, attrs); n > PubSubMaxMessageBytes {
		return nil, nil, fmt.Errorf("encode dead letter %s: %d bytes: %w", dl.GetReason(), n, ErrDeadLetterTooLarge)
	}
	return data, attrs, nil
}

// validUTF8 returns dl, or a copy of it whose strings are valid UTF-8.
func validUTF8(dl *inventoryv1.DeadLetter) *inventoryv1.DeadLetter {
	fields := []*string{&dl.Reason, &dl.Error, &dl.MessageId, &dl.Stage, &dl.Origin, &dl.DeadLetteredAt, &dl.PublishTime}
	ok := true
	for _, f := range fields {
		ok = ok && utf8.ValidString(*f)
	}
	for k, v := range dl.Attributes {
		ok = ok && utf8.ValidString(k) && utf8.ValidString(v)
	}
	if ok {
		return dl
	}
	fix := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	c := &inventoryv1.DeadLetter{
		Reason: fix(dl.Reason), Error: fix(dl.Error), Payload: dl.Payload, MessageId: fix(dl.MessageId),
		Stage: fix(dl.Stage), Origin: fix(dl.Origin), DeadLetteredAt: fix(dl.DeadLetteredAt), PublishTime: fix(dl.PublishTime),
		PayloadBytes: dl.PayloadBytes, PayloadSha256: dl.PayloadSha256, AttributesTruncated: dl.AttributesTruncated,
	}
	if dl.Attributes != nil {
		c.Attributes = make(map[string]string, len(dl.Attributes))
		for k, v := range dl.Attributes {
			c.Attributes[fix(k)] = fix(v)
		}
	}
	return c
}
