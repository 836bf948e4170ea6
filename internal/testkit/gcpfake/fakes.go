package gcpfake

import (
	"net"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TB is what the fakes need of their user: testing.TB, or a program's own
// (cmd/tools/deploycheck runs them outside a test).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// serve starts a gRPC server on a loopback port with register applied, stops
// it when the test ends, and returns client options that reach it.
func serve(t TB, register func(*grpc.Server)) []option.ClientOption {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakes: listen: %v", err)
	}
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return []option.ClientOption{
		option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}
