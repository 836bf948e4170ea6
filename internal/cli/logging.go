package cli

import (
	"context"
	"log/slog"
	"strings"
)

// quietCancel drops the errors Prism and the Beam SDK log for the bundles in
// flight when a streaming job is cancelled, which is how the local stack
// stops it: that is the expected end, not a failure.
type quietCancel struct{ slog.Handler }

func (h quietCancel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && isCancelNoise(r) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func isCancelNoise(r slog.Record) bool {
	if strings.HasPrefix(r.Message, "[SDK] process bundle failed") && strings.HasSuffix(r.Message, "context canceled") {
		return true
	}
	if r.Message != "Bundle Failed." {
		return false
	}
	canceled := false
	r.Attrs(func(a slog.Attr) bool {
		canceled = canceled || strings.Contains(a.Value.String(), "pipeline canceled")
		return !canceled
	})
	return canceled
}

func (h quietCancel) WithAttrs(as []slog.Attr) slog.Handler {
	return quietCancel{h.Handler.WithAttrs(as)}
}

func (h quietCancel) WithGroup(name string) slog.Handler {
	return quietCancel{h.Handler.WithGroup(name)}
}
