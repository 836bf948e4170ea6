//go:build !unix

package local

import (
	"context"
	"sync"
)

var warehouseLock sync.Mutex

// lock takes the warehouse's lock: without flock, a lock of this process
// only.
func (l *Warehouse) lock(ctx context.Context) (unlock func(), err error) {
	warehouseLock.Lock()
	return warehouseLock.Unlock, nil
}
