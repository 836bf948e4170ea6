package pubsubemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/bufbuild/protocompile"
	"github.com/linkedin/goavro/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// schema is a registered schema with its revisions, oldest first.
type schema struct {
	name      string
	revisions []*schemaRevision
}

type schemaRevision struct {
	proto *pb.Schema // name, type, definition, revision id, create time
	desc  *compiled
}

// compiled is a parsed schema definition.
type compiled struct {
	msg  protoreflect.MessageDescriptor // PROTOCOL_BUFFER
	avro *goavro.Codec                  // AVRO
}

func (sc *schema) latest() *schemaRevision { return sc.revisions[len(sc.revisions)-1] }

func (sc *schema) revision(id string) *schemaRevision {
	for _, r := range sc.revisions {
		if r.proto.RevisionId == id {
			return r
		}
	}
	return nil
}

// compileSchema parses a definition. A PROTOCOL_BUFFER one, like in
// Pub/Sub, takes exactly one top-level message and no imports.
func compileSchema(ctx context.Context, typ pb.Schema_Type, def string) (*compiled, error) {
	if strings.TrimSpace(def) == "" {
		return nil, status.Error(codes.InvalidArgument, "schema definition is empty")
	}
	switch typ {
	case pb.Schema_PROTOCOL_BUFFER:
	case pb.Schema_AVRO:
		sch, err := compileAvro(def)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "invalid avro schema: %v", err)
		}
		return &compiled{avro: sch}, nil
	default:
		return nil, status.Error(codes.InvalidArgument, "schema type must be PROTOCOL_BUFFER or AVRO")
	}
	c := protocompile.Compiler{
		Resolver: &protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(map[string]string{"schema.proto": def}),
		},
	}
	files, err := c.Compile(ctx, "schema.proto")
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid protocol buffer schema: %v", err)
	}
	fd := files[0]
	if fd.Imports().Len() > 0 {
		return nil, status.Error(codes.InvalidArgument, "invalid protocol buffer schema: imports are not allowed")
	}
	if n := fd.Messages().Len(); n != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "invalid protocol buffer schema: want exactly one top-level message, got %d", n)
	}
	return &compiled{msg: fd.Messages().Get(0)}, nil
}

// validateData checks data against a schema in an encoding.
func validateData(c *compiled, enc pb.Encoding, data []byte) error {
	if c.avro != nil {
		return validateAvro(c.avro, enc, data)
	}
	m := dynamicpb.NewMessage(c.msg)
	switch enc {
	case pb.Encoding_JSON:
		if err := (protojson.UnmarshalOptions{}).Unmarshal(data, m); err != nil {
			return fmt.Errorf("message does not match the schema in JSON encoding: %w", err)
		}
	case pb.Encoding_BINARY:
		if err := proto.Unmarshal(data, m); err != nil {
			return fmt.Errorf("message does not match the schema in BINARY encoding: %w", err)
		}
	default:
		return fmt.Errorf("encoding must be JSON or BINARY")
	}
	return nil
}

func newRevisionID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// splitRevision splits "projects/p/schemas/s@rev".
func splitRevision(name string) (base, rev string) {
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return name, ""
}

func schemaView(r *pb.Schema, view pb.SchemaView) *pb.Schema {
	if view == pb.SchemaView_FULL {
		return proto.Clone(r).(*pb.Schema)
	}
	return &pb.Schema{Name: r.Name, Type: r.Type}
}

func (s *Server) schemaRecord(sc *schema) storeOp {
	rec := &pb.ListSchemaRevisionsResponse{}
	for _, r := range sc.revisions {
		rec.Schemas = append(rec.Schemas, r.proto)
	}
	return metaPut(kindSchema, sc.name, rec)
}

func (g *schemaService) CreateSchema(ctx context.Context, req *pb.CreateSchemaRequest) (*pb.Schema, error) {
	s := g.s
	if err := checkProject(req.Parent); err != nil {
		return nil, err
	}
	if req.Schema == nil {
		return nil, status.Error(codes.InvalidArgument, "schema is required")
	}
	id := req.SchemaId
	if id == "" {
		id = idOf(req.Schema.Name)
	}
	name := req.Parent + "/schemas/" + id
	if _, _, err := checkName(name, "schemas"); err != nil {
		return nil, err
	}
	desc, err := compileSchema(ctx, req.Schema.Type, req.Schema.Definition)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.schemas[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "schema %s already exists", name)
	}
	now := s.now()
	rp := &pb.Schema{
		Name:               name,
		Type:               req.Schema.Type,
		Definition:         req.Schema.Definition,
		RevisionId:         newRevisionID(),
		RevisionCreateTime: timestamppb.New(now),
	}
	sc := &schema{name: name, revisions: []*schemaRevision{{proto: rp, desc: desc}}}
	if err := s.persistWait(s.schemaRecord(sc)); err != nil {
		return nil, status.Errorf(codes.Internal, "create schema: %v", err)
	}
	s.schemas[name] = sc
	return proto.Clone(rp).(*pb.Schema), nil
}

// lookupSchema returns the schema and, for a name@revision, that revision.
func (s *Server) lookupSchema(name string) (*schema, *schemaRevision, error) {
	base, rev := splitRevision(name)
	sc, ok := s.schemas[base]
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "schema %s not found", base)
	}
	if rev == "" {
		return sc, sc.latest(), nil
	}
	r := sc.revision(rev)
	if r == nil {
		return nil, nil, status.Errorf(codes.NotFound, "schema revision %s not found", name)
	}
	return sc, r, nil
}

func (g *schemaService) GetSchema(_ context.Context, req *pb.GetSchemaRequest) (*pb.Schema, error) {
	s := g.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, r, err := s.lookupSchema(req.Name)
	if err != nil {
		return nil, err
	}
	return schemaView(r.proto, req.View), nil
}

func (g *schemaService) ListSchemas(_ context.Context, req *pb.ListSchemasRequest) (*pb.ListSchemasResponse, error) {
	s := g.s
	if err := checkProject(req.Parent); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for n := range s.schemas {
		if projectOf(n) == req.Parent {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	page, next := paginate(names, req.PageToken, req.PageSize)
	resp := &pb.ListSchemasResponse{NextPageToken: next}
	for _, n := range page {
		resp.Schemas = append(resp.Schemas, schemaView(s.schemas[n].latest().proto, req.View))
	}
	return resp, nil
}

func (g *schemaService) ListSchemaRevisions(_ context.Context, req *pb.ListSchemaRevisionsRequest) (*pb.ListSchemaRevisionsResponse, error) {
	s := g.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	sc, ok := s.schemas[req.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "schema %s not found", req.Name)
	}
	view := req.View
	if view == pb.SchemaView_SCHEMA_VIEW_UNSPECIFIED {
		view = pb.SchemaView_FULL
	}
	// Newest first, as Pub/Sub lists them.
	var ids []string
	byID := map[string]*pb.Schema{}
	for i := len(sc.revisions) - 1; i >= 0; i-- {
		id := sc.revisions[i].proto.RevisionId
		ids = append(ids, id)
		byID[id] = sc.revisions[i].proto
	}
	start := 0
	if req.PageToken != "" {
		start = len(ids)
		for i, id := range ids {
			if id == req.PageToken {
				start = i
				break
			}
		}
	}
	n := int(req.PageSize)
	if n <= 0 || n > 100 {
		n = 100
	}
	resp := &pb.ListSchemaRevisionsResponse{}
	end := min(start+n, len(ids))
	for _, id := range ids[start:end] {
		resp.Schemas = append(resp.Schemas, schemaView(byID[id], view))
	}
	if end < len(ids) {
		resp.NextPageToken = ids[end]
	}
	return resp, nil
}

func (g *schemaService) CommitSchema(ctx context.Context, req *pb.CommitSchemaRequest) (*pb.Schema, error) {
	s := g.s
	if req.Schema == nil {
		return nil, status.Error(codes.InvalidArgument, "schema is required")
	}
	desc, err := compileSchema(ctx, req.Schema.Type, req.Schema.Definition)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.schemas[req.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "schema %s not found", req.Name)
	}
	if sc.latest().proto.Type != req.Schema.Type {
		return nil, status.Error(codes.InvalidArgument, "a revision must keep the schema's type")
	}
	return s.addRevisionLocked(sc, req.Schema.Definition, desc)
}

func (s *Server) addRevisionLocked(sc *schema, def string, desc *compiled) (*pb.Schema, error) {
	rp := &pb.Schema{
		Name:               sc.name,
		Type:               sc.latest().proto.Type,
		Definition:         def,
		RevisionId:         newRevisionID(),
		RevisionCreateTime: timestamppb.New(s.now()),
	}
	next := &schema{name: sc.name, revisions: append(append([]*schemaRevision(nil), sc.revisions...), &schemaRevision{proto: rp, desc: desc})}
	if err := s.persistWait(s.schemaRecord(next)); err != nil {
		return nil, status.Errorf(codes.Internal, "commit schema: %v", err)
	}
	s.schemas[sc.name] = next
	return proto.Clone(rp).(*pb.Schema), nil
}

func (g *schemaService) RollbackSchema(_ context.Context, req *pb.RollbackSchemaRequest) (*pb.Schema, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.schemas[req.Name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "schema %s not found", req.Name)
	}
	r := sc.revision(req.RevisionId)
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "schema revision %s@%s not found", req.Name, req.RevisionId)
	}
	return s.addRevisionLocked(sc, r.proto.Definition, r.desc)
}

func (g *schemaService) DeleteSchemaRevision(_ context.Context, req *pb.DeleteSchemaRevisionRequest) (*pb.Schema, error) {
	s := g.s
	base, rev := splitRevision(req.Name)
	if rev == "" {
		rev = req.RevisionId //nolint:staticcheck // deprecated field still honoured
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.schemas[base]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "schema %s not found", base)
	}
	if len(sc.revisions) == 1 {
		return nil, status.Error(codes.FailedPrecondition, "cannot delete the only revision of a schema")
	}
	next := &schema{name: sc.name}
	var deleted *pb.Schema
	for _, r := range sc.revisions {
		if r.proto.RevisionId == rev {
			deleted = r.proto
			continue
		}
		next.revisions = append(next.revisions, r)
	}
	if deleted == nil {
		return nil, status.Errorf(codes.NotFound, "schema revision %s@%s not found", base, rev)
	}
	if err := s.persistWait(s.schemaRecord(next)); err != nil {
		return nil, status.Errorf(codes.Internal, "delete schema revision: %v", err)
	}
	s.schemas[base] = next
	return proto.Clone(deleted).(*pb.Schema), nil
}

func (g *schemaService) DeleteSchema(_ context.Context, req *pb.DeleteSchemaRequest) (*emptypb.Empty, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.schemas[req.Name]; !ok {
		return nil, status.Errorf(codes.NotFound, "schema %s not found", req.Name)
	}
	ops := append(s.dropPolicyLocked(req.Name), metaDelete(kindSchema, req.Name))
	// Topics bound to it keep a binding to the deleted-schema marker, as in Pub/Sub.
	for _, t := range s.topics {
		t.mu.Lock()
		if ss := t.proto.SchemaSettings; ss != nil && ss.Schema == req.Name {
			tp := proto.Clone(t.proto).(*pb.Topic)
			tp.SchemaSettings.Schema = deletedSchema
			t.proto = tp
			ops = append(ops, metaPut(kindTopic, t.name, tp))
		}
		t.mu.Unlock()
	}
	if err := s.persistWait(ops...); err != nil {
		return nil, status.Errorf(codes.Internal, "delete schema: %v", err)
	}
	delete(s.schemas, req.Name)
	return &emptypb.Empty{}, nil
}

func (g *schemaService) ValidateSchema(ctx context.Context, req *pb.ValidateSchemaRequest) (*pb.ValidateSchemaResponse, error) {
	if req.Schema == nil {
		return nil, status.Error(codes.InvalidArgument, "schema is required")
	}
	if _, err := compileSchema(ctx, req.Schema.Type, req.Schema.Definition); err != nil {
		return nil, err
	}
	return &pb.ValidateSchemaResponse{}, nil
}

func (g *schemaService) ValidateMessage(ctx context.Context, req *pb.ValidateMessageRequest) (*pb.ValidateMessageResponse, error) {
	s := g.s
	var desc *compiled
	switch sp := req.SchemaSpec.(type) {
	case *pb.ValidateMessageRequest_Name:
		s.mu.RLock()
		_, r, err := s.lookupSchema(sp.Name)
		s.mu.RUnlock()
		if err != nil {
			return nil, err
		}
		desc = r.desc
	case *pb.ValidateMessageRequest_Schema:
		d, err := compileSchema(ctx, sp.Schema.GetType(), sp.Schema.GetDefinition())
		if err != nil {
			return nil, err
		}
		desc = d
	default:
		return nil, status.Error(codes.InvalidArgument, "name or schema is required")
	}
	if err := validateData(desc, req.Encoding, req.Message); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "validate message: %v", err)
	}
	return &pb.ValidateMessageResponse{}, nil
}

// binding is a topic's compiled schema settings, resolved at publish time.
type binding struct {
	schemaName string
	encoding   pb.Encoding
	revisions  []*schemaRevision // newest first, within first..last
}

var encodingNames = map[pb.Encoding]string{pb.Encoding_JSON: "JSON", pb.Encoding_BINARY: "BINARY"}

// resolveBinding must be called with s.mu held (read).
func (s *Server) resolveBinding(ss *pb.SchemaSettings) (*binding, error) {
	if ss == nil || ss.Schema == "" {
		return nil, nil
	}
	if ss.Schema == deletedSchema {
		return nil, status.Error(codes.FailedPrecondition, "the topic's schema has been deleted")
	}
	sc, ok := s.schemas[ss.Schema]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "schema %s not found", ss.Schema)
	}
	first, last := 0, len(sc.revisions)-1
	if ss.FirstRevisionId != "" {
		first = -1
		for i, r := range sc.revisions {
			if r.proto.RevisionId == ss.FirstRevisionId {
				first = i
			}
		}
		if first < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "first revision %s of schema %s not found", ss.FirstRevisionId, ss.Schema)
		}
	}
	if ss.LastRevisionId != "" {
		last = -1
		for i, r := range sc.revisions {
			if r.proto.RevisionId == ss.LastRevisionId {
				last = i
			}
		}
		if last < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "last revision %s of schema %s not found", ss.LastRevisionId, ss.Schema)
		}
	}
	if first > last {
		return nil, status.Error(codes.InvalidArgument, "first revision is newer than last revision")
	}
	enc := ss.Encoding
	switch enc {
	case pb.Encoding_JSON, pb.Encoding_BINARY:
	case pb.Encoding_ENCODING_UNSPECIFIED:
		enc = pb.Encoding_JSON // the field is optional; JSON is the default
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown schema encoding %v", ss.Encoding)
	}
	b := &binding{schemaName: ss.Schema, encoding: enc}
	for i := last; i >= first; i-- {
		b.revisions = append(b.revisions, sc.revisions[i])
	}
	return b, nil
}

// check validates data, newest revision first, and returns the matching revision id.
func (b *binding) check(data []byte) (string, error) {
	var firstErr error
	for _, r := range b.revisions {
		err := validateData(r.desc, b.encoding, data)
		if err == nil {
			return r.proto.RevisionId, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}
