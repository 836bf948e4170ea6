package pubsubemu

import (
	"context"
	"crypto/rand"
	"strings"

	"cloud.google.com/go/iam/apiv1/iampb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// iamService serves google.iam.v1.IAMPolicy on topics, subscriptions,
// snapshots and schemas (https://cloud.google.com/pubsub/docs/access-control):
// policies are stored with an etag for read-modify-write; nothing is
// enforced, and TestIamPermissions grants every Pub/Sub permission asked for.
type iamService struct {
	iampb.UnimplementedIAMPolicyServer
	s *Server
}

const kindPolicy = "i/"

// emptyPolicyEtag is the etag Pub/Sub gives a resource that has no policy.
var emptyPolicyEtag = []byte("\x00\x20\x01") // "ACAB" in base64

// checkResourceLocked finds the resource a policy is attached to (s.mu held).
func (s *Server) checkResourceLocked(resource string) error {
	parts := strings.Split(resource, "/")
	if len(parts) != 4 || parts[0] != "projects" {
		return status.Errorf(codes.InvalidArgument, "invalid resource %q: want projects/{project}/{topics|subscriptions|snapshots|schemas}/{id}", resource)
	}
	var ok bool
	switch parts[2] {
	case "topics":
		_, ok = s.topics[resource]
	case "subscriptions":
		_, ok = s.subs[resource]
	case "snapshots":
		_, ok = s.snaps[resource]
	case "schemas":
		_, ok = s.schemas[resource]
	default:
		return status.Errorf(codes.InvalidArgument, "invalid resource %q: unknown kind %q", resource, parts[2])
	}
	if !ok {
		return status.Errorf(codes.NotFound, "resource %s not found", resource)
	}
	return nil
}

func (g *iamService) GetIamPolicy(_ context.Context, req *iampb.GetIamPolicyRequest) (*iampb.Policy, error) {
	s := g.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkResourceLocked(req.Resource); err != nil {
		return nil, err
	}
	if p, ok := s.policies[req.Resource]; ok {
		return proto.Clone(p).(*iampb.Policy), nil
	}
	return &iampb.Policy{Etag: emptyPolicyEtag}, nil
}

func (g *iamService) SetIamPolicy(_ context.Context, req *iampb.SetIamPolicyRequest) (*iampb.Policy, error) {
	s := g.s
	if req.Policy == nil {
		return nil, status.Error(codes.InvalidArgument, "policy is required")
	}
	for _, b := range req.Policy.Bindings {
		if !strings.HasPrefix(b.Role, "roles/") {
			return nil, status.Errorf(codes.InvalidArgument, "invalid role %q: want roles/...", b.Role)
		}
		for _, m := range b.Members {
			if !validMember(m) {
				return nil, status.Errorf(codes.InvalidArgument, "invalid member %q of role %s", m, b.Role)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkResourceLocked(req.Resource); err != nil {
		return nil, err
	}
	cur := emptyPolicyEtag
	if p, ok := s.policies[req.Resource]; ok {
		cur = p.Etag
	}
	if len(req.Policy.Etag) > 0 && string(req.Policy.Etag) != string(cur) {
		return nil, status.Errorf(codes.Aborted, "policy of %s changed since it was read (etag mismatch)", req.Resource)
	}
	next := proto.Clone(req.Policy).(*iampb.Policy)
	next.Etag = make([]byte, 8)
	_, _ = rand.Read(next.Etag)
	if err := s.persistWait(metaPut(kindPolicy, req.Resource, next)); err != nil {
		return nil, status.Errorf(codes.Internal, "set iam policy: %v", err)
	}
	s.policies[req.Resource] = next
	return proto.Clone(next).(*iampb.Policy), nil
}

// validMember accepts the IAM principal forms
// (https://cloud.google.com/iam/docs/principal-identifiers).
func validMember(m string) bool {
	switch m {
	case "allUsers", "allAuthenticatedUsers":
		return true
	}
	for _, p := range []string{"user:", "serviceAccount:", "group:", "domain:", "principal://", "principalSet://", "deleted:", "projectOwner:", "projectEditor:", "projectViewer:"} {
		if strings.HasPrefix(m, p) && len(m) > len(p) {
			return true
		}
	}
	return false
}

func (g *iamService) TestIamPermissions(_ context.Context, req *iampb.TestIamPermissionsRequest) (*iampb.TestIamPermissionsResponse, error) {
	s := g.s
	s.mu.RLock()
	err := s.checkResourceLocked(req.Resource)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	resp := &iampb.TestIamPermissionsResponse{}
	for _, p := range req.Permissions {
		if !strings.HasPrefix(p, "pubsub.") {
			return nil, status.Errorf(codes.InvalidArgument, "permission %q is not a Pub/Sub permission", p)
		}
		resp.Permissions = append(resp.Permissions, p) // everything is allowed locally
	}
	return resp, nil
}
