package console

import (
	"context"
	"log/slog"
	"strings"
)

// QuietCancel wraps h so that the errors Prism and the Beam SDK log when a
// job's context is cancelled are logged at DEBUG instead: the bundles in
// flight when a streaming job is cancelled (how the local stack stops it),
// and the SDK harness's state and data channels closing after every batch
// job on an in-process Prism. That is the expected end, not a failure.
func QuietCancel(h slog.Handler) slog.Handler { return quietCancel{h} }

type quietCancel struct{ slog.Handler }

func (h quietCancel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && isCancelNoise(r) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r = r.Clone()
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

// isCancelNoise reports whether r is one of the errors a cancelled Beam
// job logs on its way out.
func isCancelNoise(r slog.Record) bool {
	canceled := func(s string) bool {
		return strings.Contains(s, "context canceled") || strings.Contains(s, "code = Canceled")
	}
	switch {
	case strings.HasPrefix(r.Message, "[SDK] process bundle failed") && strings.HasSuffix(r.Message, "context canceled"):
		return true
	case strings.Contains(r.Message, "StateChannel[") || strings.Contains(r.Message, "DataChannel[") ||
		strings.HasPrefix(r.Message, "state.Recv failed") || strings.HasPrefix(r.Message, "state.Send"):
		// The harness's channels to the runner: "StateChannel[id].read
		// bad: rpc error: code = Canceled desc = context canceled".
		found := canceled(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			found = found || canceled(a.Value.String())
			return !found
		})
		return found
	case r.Message == "Bundle Failed.":
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = found || strings.Contains(a.Value.String(), "pipeline canceled")
			return !found
		})
		return found
	}
	return false
}

func (h quietCancel) WithAttrs(as []slog.Attr) slog.Handler {
	return quietCancel{h.Handler.WithAttrs(as)}
}

func (h quietCancel) WithGroup(name string) slog.Handler {
	return quietCancel{h.Handler.WithGroup(name)}
}
