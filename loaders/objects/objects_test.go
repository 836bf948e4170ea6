package objects_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/inventory-events/inventory/loaders/objects"
	"github.com/inventory-events/inventory/loaders/snapshot"
)

func TestLocalWriteIsAtomic(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	if err := objects.WriteFile(ctx, path, "application/json", []byte("old")); err != nil {
		t.Fatal(err)
	}
	w, err := objects.Create(ctx, path, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("new, half written")); err != nil {
		t.Fatal(err)
	}
	// Until Close, readers see the old object.
	if b, _ := objects.ReadFile(ctx, path); string(b) != "old" {
		t.Fatalf("mid-write read %q", b)
	}
	w.Abort()
	if b, _ := objects.ReadFile(ctx, path); string(b) != "old" {
		t.Fatalf("after abort %q", b)
	}
	if err := objects.WriteFile(ctx, path, "application/json", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := objects.ReadFile(ctx, path); string(b) != "new" {
		t.Fatalf("after write %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if _, err := objects.Open(ctx, path+".missing"); !errors.Is(err, objects.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestGCSSnapshot writes and reads a snapshot through the GCS JSON API of an
// in-process fake-gcs-server.
func TestGCSSnapshot(t *testing.T) {
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0,
		InitialObjects: []fakestorage.Object{{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "inv-bucket", Name: "keep"}, Content: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	t.Setenv("STORAGE_EMULATOR_HOST", srv.URL()[len("http://"):])
	ctx := context.Background()
	uri := "gs://inv-bucket/state/inventory_state.json"
	if _, err := objects.Open(ctx, uri); !errors.Is(err, objects.ErrNotExist) {
		t.Fatalf("missing object: %v", err)
	}
	if b, err := objects.ReadFile(ctx, "gs://inv-bucket/keep"); err != nil || string(b) != "x" {
		t.Fatalf("keep: %q %v", b, err)
	}
	at := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	want := &snapshot.File{AsOf: at, Items: []snapshot.Item{{SKU: "B", LocationID: "S1", OnHand: 3}, {SKU: "A", LocationID: "S1", OnHand: 7}}}
	if err := snapshot.Write(ctx, uri, want); err != nil {
		t.Fatal(err)
	}
	got, err := snapshot.Read(ctx, uri)
	if err != nil {
		objs, _, _ := srv.ListObjectsWithOptions("inv-bucket", fakestorage.ListOptions{})
		for _, o := range objs {
			t.Logf("object %q", o.Name)
		}
		t.Fatal(err)
	}
	if !got.AsOf.Equal(at) || len(got.Items) != 2 || got.Items[0].SKU != "A" || got.Items[1].OnHand != 3 {
		t.Fatalf("read back %+v", got)
	}
	obj, err := srv.GetObject("inv-bucket", "state/inventory_state.json")
	if err != nil || obj.ContentType != "application/json" {
		t.Fatalf("object %+v %v", obj.ObjectAttrs, err)
	}
}
