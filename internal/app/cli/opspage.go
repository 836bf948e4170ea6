package cli

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/inventory-events/inventory/internal/app/health"
	"github.com/inventory-events/inventory/internal/app/localstack"
	"github.com/inventory-events/inventory/internal/app/opspage"
)

// registerOpsPage puts the operations page of the stack cfg describes on
// mux, with the health signals of src (nil: none). The returned stop, safe
// to call twice, ends the page's alert feed and its event streams; call it
// before the stack stops.
func registerOpsPage(ctx context.Context, mux *http.ServeMux, cfg localstack.Config, src health.Source) (func(), error) {
	page, err := opspage.Register(ctx, mux, opspage.Config{Health: src, Project: cfg.Project, Warehouse: cfg.Warehouse,
		Reports: cfg.Reports, Thresholds: cfg.Thresholds, Snapshot: cfg.Snapshot, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := page.Close(sctx); err != nil {
				cfg.Logger.Warn("operations page: stop", "err", err)
			}
		})
	}, nil
}
