// Package objects reads and writes whole objects named by a URI: a local
// path, or gs://BUCKET/OBJECT. Writes are atomic: a reader sees the old
// object or the new one, never part of one (a temporary file renamed into
// place locally; GCS publishes an object only when its upload completes).
//
// The GCS client honours STORAGE_EMULATOR_HOST, so tests and the local
// stack can point it at an emulator.
package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
)

// isGCS reports whether uri names a Cloud Storage object.
func isGCS(uri string) bool { return strings.HasPrefix(uri, "gs://") }

func splitGCS(uri string) (bucket, object string, err error) {
	rest := strings.TrimPrefix(uri, "gs://")
	bucket, object, ok := strings.Cut(rest, "/")
	if !ok || bucket == "" || object == "" {
		return "", "", fmt.Errorf("objects: %q is not gs://BUCKET/OBJECT", uri)
	}
	return bucket, object, nil
}

var (
	clientMu sync.Mutex
	client   *storage.Client
	// clientOptions are used when the shared GCS client is first made.
	clientOptions []option.ClientOption
)

func gcs(ctx context.Context) (*storage.Client, error) {
	clientMu.Lock()
	defer clientMu.Unlock()
	if client != nil {
		return client, nil
	}
	opts := clientOptions
	if os.Getenv("STORAGE_EMULATOR_HOST") != "" {
		// Emulators serve the JSON API fully; the XML read path less so.
		opts = append([]option.ClientOption{storage.WithJSONReads()}, opts...)
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage.NewClient: %w", err)
	}
	client = c
	return c, nil
}

// ErrNotExist is returned (wrapped) by Open for a missing object.
var ErrNotExist = os.ErrNotExist

// Open opens uri for reading.
func Open(ctx context.Context, uri string) (io.ReadCloser, error) {
	if !isGCS(uri) {
		f, err := os.Open(uri)
		if err != nil {
			return nil, fmt.Errorf("objects: open: %w", err)
		}
		return f, nil
	}
	bucket, object, err := splitGCS(uri)
	if err != nil {
		return nil, err
	}
	c, err := gcs(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.Bucket(bucket).Object(object).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, fmt.Errorf("objects: open %s: %w", uri, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("objects: open %s: %w", uri, err)
	}
	return r, nil
}

// ReadFile returns the whole of uri.
func ReadFile(ctx context.Context, uri string) ([]byte, error) {
	r, err := Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("objects: read %s: %w", uri, err)
	}
	return b, nil
}

// Writer is an object being written. Close publishes it; Abort drops it.
type Writer interface {
	io.Writer
	// Close makes the object visible under its name, atomically.
	Close() error
	// Abort discards what was written; the old object, if any, stays.
	Abort()
}

// Create starts writing uri. Local parent directories are created.
func Create(ctx context.Context, uri, contentType string) (Writer, error) {
	if !isGCS(uri) {
		dir := filepath.Dir(uri)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("objects: create %s: %w", uri, err)
		}
		f, err := os.CreateTemp(dir, "."+filepath.Base(uri)+".tmp-*")
		if err != nil {
			return nil, fmt.Errorf("objects: create %s: %w", uri, err)
		}
		return &fileWriter{f: f, name: uri}, nil
	}
	bucket, object, err := splitGCS(uri)
	if err != nil {
		return nil, err
	}
	c, err := gcs(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := c.Bucket(bucket).Object(object).NewWriter(ctx)
	w.ContentType = contentType
	return &gcsWriter{w: w, cancel: cancel, uri: uri}, nil
}

// WriteFile writes data to uri atomically.
func WriteFile(ctx context.Context, uri, contentType string, data []byte) error {
	w, err := Create(ctx, uri, contentType)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return fmt.Errorf("objects: write %s: %w", uri, err)
	}
	return w.Close()
}

type fileWriter struct {
	f    *os.File
	name string
}

func (w *fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *fileWriter) Close() error {
	tmp := w.f.Name()
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("objects: sync %s: %w", w.name, err)
	}
	if err := w.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("objects: close %s: %w", w.name, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("objects: chmod %s: %w", w.name, err)
	}
	if err := os.Rename(tmp, w.name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("objects: rename into %s: %w", w.name, err)
	}
	return nil
}

func (w *fileWriter) Abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

type gcsWriter struct {
	w      *storage.Writer
	cancel context.CancelFunc
	uri    string
}

func (w *gcsWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *gcsWriter) Close() error {
	defer w.cancel()
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("objects: upload %s: %w", w.uri, err)
	}
	return nil
}

// Abort cancels the upload: GCS never publishes a cancelled object.
func (w *gcsWriter) Abort() {
	w.cancel()
	_ = w.w.Close()
}
