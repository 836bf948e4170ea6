package cli

import (
	"context"
	"log/slog"
	"strings"
)

// quietCancel drops the error Prism logs for every bundle in flight when a
// streaming job is cancelled, which is how the local stack stops it: it is
// the expected end, not a failure.
type quietCancel struct{ slog.Handler }

func (h quietCancel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && r.Message == "Bundle Failed." {
		canceled := false
		r.Attrs(func(a slog.Attr) bool {
			canceled = canceled || strings.Contains(a.Value.String(), "pipeline canceled")
			return !canceled
		})
		if canceled {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietCancel) WithAttrs(as []slog.Attr) slog.Handler {
	return quietCancel{h.Handler.WithAttrs(as)}
}

func (h quietCancel) WithGroup(name string) slog.Handler {
	return quietCancel{h.Handler.WithGroup(name)}
}
