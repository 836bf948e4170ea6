# The nightly trigger: the Cloud Run service (cmd/trigger).
# Build from the repository root: docker build -f deploy/Dockerfile.trigger .
FROM golang:1.26.1-bookworm AS build
# The Go that CI scans with govulncheck (see the Makefile); fetched by the go command.
ENV GOTOOLCHAIN=go1.27.3
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Pure Go, static; time zones embedded (TIME_ZONE, the cron zone).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux GOARCH=amd64 \
    go build -trimpath -tags timetzdata -ldflags="-s -w" -o /out/trigger ./cmd/trigger

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/trigger /trigger
USER nonroot:nonroot
ENV MODE=production PORT=8080
EXPOSE 8080
ENTRYPOINT ["/trigger"]
