package pubsubemu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// The data directory holds one bbolt file:
//
//	meta            "t/"+topic, "s/"+subscription, "c/"+schema, "n/"+snapshot,
//	                "i/"+resource (IAM policy) -> proto bytes
//	msgs            seq (8 bytes, big endian) -> PubsubMessage bytes
//	"s:"+sub name   (or snapshot name: the messages it keeps)
//	                seq -> "" (unacked), "n"+uvarint (unacked, delivery attempts)
//	                or "a" (acked, retained for seek)
//
// Writes go through one goroutine that commits everything queued in a single
// transaction (group commit), so publishes share fsyncs.

var (
	bucketMeta = []byte("meta")
	bucketMsgs = []byte("msgs")
	ackedMark  = []byte("a")
)

const (
	kindTopic  = "t/"
	kindSub    = "s/"
	kindSchema = "c/"
)

type opKind uint8

const (
	opPut opKind = iota
	opDelete
	opDeleteBucket
)

type storeOp struct {
	kind   opKind
	bucket string
	key    []byte
	val    []byte
}

type storeBatch struct {
	ops  []storeOp
	done chan error
}

type store struct {
	db     *bolt.DB
	ch     chan storeBatch
	mu     sync.RWMutex // guards closed against submit
	closed bool
	exited chan struct{}
	err    error // first write error, reported by close
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open data dir: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "pubsub.db"), 0o600, &bolt.Options{
		Timeout:        2 * time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open data dir %s: %w", dir, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketMsgs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init data dir %s: %w", dir, err)
	}
	st := &store{db: db, ch: make(chan storeBatch, 4096), exited: make(chan struct{})}
	go st.run()
	return st, nil
}

// submit queues ops; with wait it blocks until they are committed.
func (st *store) submit(ops []storeOp, wait bool) error {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.closed {
		return errors.New("data dir is closed")
	}
	b := storeBatch{ops: ops}
	if wait {
		b.done = make(chan error, 1)
	}
	st.ch <- b
	if wait {
		return <-b.done
	}
	return nil
}

func (st *store) run() {
	defer close(st.exited)
	for first := range st.ch {
		batches := []storeBatch{first}
		n := len(first.ops)
	drain:
		for n < 50000 {
			select {
			case b, ok := <-st.ch:
				if !ok {
					break drain
				}
				batches = append(batches, b)
				n += len(b.ops)
			default:
				break drain
			}
		}
		err := st.db.Update(func(tx *bolt.Tx) error {
			for _, b := range batches {
				for _, op := range b.ops {
					if err := applyOp(tx, op); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil && st.err == nil {
			st.err = fmt.Errorf("write data dir: %w", err)
		}
		for _, b := range batches {
			if b.done != nil {
				b.done <- err
			}
		}
	}
}

func applyOp(tx *bolt.Tx, op storeOp) error {
	switch op.kind {
	case opDeleteBucket:
		err := tx.DeleteBucket([]byte(op.bucket))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	case opPut:
		b, err := tx.CreateBucketIfNotExists([]byte(op.bucket))
		if err != nil {
			return err
		}
		return b.Put(op.key, op.val)
	case opDelete:
		b := tx.Bucket([]byte(op.bucket))
		if b == nil {
			return nil
		}
		return b.Delete(op.key)
	}
	return fmt.Errorf("unknown store op %d", op.kind)
}

// close flushes queued writes and closes the file.
func (st *store) close() error {
	st.mu.Lock()
	if !st.closed {
		st.closed = true
		close(st.ch)
	}
	st.mu.Unlock()
	<-st.exited
	err := st.err
	if cerr := st.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close data dir: %w", cerr)
	}
	return err
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func subBucket(name string) string { return "s:" + name }

func metaPut(kind, name string, m proto.Message) storeOp {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("marshal %s%s: %v", kind, name, err)) // generated types always marshal
	}
	return storeOp{kind: opPut, bucket: string(bucketMeta), key: []byte(kind + name), val: b}
}

func metaDelete(kind, name string) storeOp {
	return storeOp{kind: opDelete, bucket: string(bucketMeta), key: []byte(kind + name)}
}

func msgPut(m *message) storeOp {
	b, err := proto.Marshal(m.pm)
	if err != nil {
		panic(fmt.Sprintf("marshal message %d: %v", m.seq, err))
	}
	return storeOp{kind: opPut, bucket: string(bucketMsgs), key: seqKey(m.seq), val: b}
}

func msgDelete(seq uint64) storeOp {
	return storeOp{kind: opDelete, bucket: string(bucketMsgs), key: seqKey(seq)}
}

func subMsgPut(sub string, seq uint64, acked bool) storeOp {
	var v []byte
	if acked {
		v = ackedMark
	} else {
		v = []byte{}
	}
	return storeOp{kind: opPut, bucket: subBucket(sub), key: seqKey(seq), val: v}
}

// subMsgAttempts records an unacked message's delivery attempts so dead
// lettering survives a restart.
func subMsgAttempts(sub string, seq uint64, attempts int32) storeOp {
	v := binary.AppendUvarint([]byte{'n'}, uint64(attempts))
	return storeOp{kind: opPut, bucket: subBucket(sub), key: seqKey(seq), val: v}
}

// decodeSubMsg reads a subscription record: acked, and delivery attempts.
func decodeSubMsg(v []byte) (acked bool, attempts int32) {
	if len(v) == 0 {
		return false, 0
	}
	if v[0] == 'a' {
		return true, 0
	}
	if v[0] == 'n' {
		n, _ := binary.Uvarint(v[1:])
		return false, int32(n)
	}
	return false, 0
}

func subMsgDelete(sub string, seq uint64) storeOp {
	return storeOp{kind: opDelete, bucket: subBucket(sub), key: seqKey(seq)}
}

// load rebuilds schemas, topics, subscriptions and backlogs from the data dir,
// then deletes the messages no subscription or snapshot holds any more.
func (s *Server) load() error {
	var garbage []uint64
	err := s.store.db.View(func(tx *bolt.Tx) error {
		meta, err := s.loadMeta(tx)
		if err != nil {
			return err
		}
		holders, err := s.restoreResources(meta)
		if err != nil {
			return err
		}
		msgs, err := s.restoreBacklogs(tx, holders)
		if err != nil {
			return err
		}
		for seq, m := range msgs {
			if m.refs.Load() == 0 {
				garbage = append(garbage, seq)
			}
		}
		s.log.Info("pubsubemu restored data dir", "schemas", len(s.schemas), "topics", len(s.topics),
			"subscriptions", len(s.subs), "messages", len(msgs)-len(garbage))
		return nil
	})
	if err != nil {
		return err
	}
	ops := make([]storeOp, 0, len(garbage))
	for _, seq := range garbage {
		ops = append(ops, msgDelete(seq))
	}
	if len(ops) > 0 {
		return s.persistWait(ops...)
	}
	return nil
}

// storedMeta is the resources read from the meta bucket that load builds
// after the schemas (which loadMeta restores at once).
type storedMeta struct {
	topics []*pb.Topic
	subs   []*pb.Subscription
	snaps  []*pb.Snapshot
}

// loadMeta reads the meta bucket: it restores schemas and IAM policies and
// returns the topics, subscriptions and snapshots.
func (s *Server) loadMeta(tx *bolt.Tx) (storedMeta, error) {
	var meta storedMeta
	err := tx.Bucket(bucketMeta).ForEach(func(k, v []byte) error {
		key := string(k)
		if len(key) <= 2 {
			return nil
		}
		kind, name := key[:2], key[2:]
		switch kind {
		case kindSchema:
			return s.loadSchema(name, v)
		case kindTopic:
			tp := &pb.Topic{}
			if err := proto.Unmarshal(v, tp); err != nil {
				return fmt.Errorf("topic %s: %w", name, err)
			}
			meta.topics = append(meta.topics, tp)
		case kindSub:
			sp := &pb.Subscription{}
			if err := proto.Unmarshal(v, sp); err != nil {
				return fmt.Errorf("subscription %s: %w", name, err)
			}
			meta.subs = append(meta.subs, sp)
		case kindPolicy:
			p := &iampb.Policy{}
			if err := proto.Unmarshal(v, p); err != nil {
				return fmt.Errorf("iam policy of %s: %w", name, err)
			}
			s.policies[name] = p
		case kindSnapshot:
			sn := &pb.Snapshot{}
			if err := proto.Unmarshal(v, sn); err != nil {
				return fmt.Errorf("snapshot %s: %w", name, err)
			}
			meta.snaps = append(meta.snaps, sn)
		}
		return nil
	})
	return meta, err
}

// loadSchema restores a schema from its stored revisions, compiling each.
func (s *Server) loadSchema(name string, v []byte) error {
	rec := &pb.ListSchemaRevisionsResponse{}
	if err := proto.Unmarshal(v, rec); err != nil {
		return fmt.Errorf("schema %s: %w", name, err)
	}
	sc := &schema{name: name}
	for _, rp := range rec.Schemas {
		desc, err := compileSchema(context.Background(), rp.Type, rp.Definition)
		if err != nil {
			return fmt.Errorf("schema %s revision %s: %w", sc.name, rp.RevisionId, err)
		}
		sc.revisions = append(sc.revisions, &schemaRevision{proto: rp, desc: desc})
	}
	if len(sc.revisions) > 0 {
		s.schemas[sc.name] = sc
	}
	return nil
}

// restoreResources builds the topics, subscriptions and snapshots, and
// returns every holder of messages: the subscriptions and the snapshots.
func (s *Server) restoreResources(meta storedMeta) ([]*subscription, error) {
	for _, tp := range meta.topics {
		s.topics[tp.Name] = &topic{name: tp.Name, proto: tp}
	}
	for _, sp := range meta.subs {
		sub, err := s.newSubscription(sp)
		if err != nil {
			return nil, fmt.Errorf("subscription %s: %w", sp.Name, err)
		}
		s.subs[sp.Name] = sub
		if t := s.topics[sp.Topic]; t != nil {
			t.subs = append(t.subs, sub)
		}
	}
	holders := make([]*subscription, 0, len(s.subs)+len(meta.snaps))
	for _, sub := range s.subs {
		holders = append(holders, sub)
	}
	for _, sn := range meta.snaps {
		h, err := s.newSnapshotHolder(sn)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", sn.Name, err)
		}
		s.snaps[sn.Name] = &snapshot{proto: sn, held: h}
		holders = append(holders, h)
		if t := s.topics[sn.Topic]; t != nil {
			t.subs = append(t.subs, h)
		}
	}
	return holders, nil
}

// restoreBacklogs reads the messages, then each holder's backlog in publish
// order, and returns the messages by sequence number.
func (s *Server) restoreBacklogs(tx *bolt.Tx, holders []*subscription) (map[uint64]*message, error) {
	msgs := map[uint64]*message{}
	var maxSeq uint64
	c := tx.Bucket(bucketMsgs).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		pm := &pb.PubsubMessage{}
		if err := proto.Unmarshal(v, pm); err != nil {
			return nil, fmt.Errorf("message %x: %w", k, err)
		}
		seq := binary.BigEndian.Uint64(k)
		msgs[seq] = newMessage(seq, pm)
		maxSeq = max(maxSeq, seq)
	}
	for _, sub := range holders {
		b := tx.Bucket([]byte(subBucket(sub.name)))
		if b == nil {
			continue
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			m := msgs[binary.BigEndian.Uint64(k)]
			if m == nil {
				continue
			}
			if m.refs.Add(1) == 1 {
				if t := s.topics[sub.proto.Topic]; t != nil {
					t.retain(m)
				}
			}
			acked, attempts := decodeSubMsg(v)
			sub.restore(m, acked, attempts)
		}
	}
	s.msgSeq.Store(maxSeq)
	return msgs, nil
}
