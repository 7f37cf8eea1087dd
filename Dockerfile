# dingbridge: a static binary on a minimal base, running as a non-root user.
#   docker build -t dingbridge --build-arg VERSION=$(git describe --tags --always) .
#   docker run -v $PWD/config.yaml:/etc/dingbridge/config.yaml -e DINGBRIDGE_DATABASE_URL=... dingbridge
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so a code change does not refetch modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/dingbridge ./cmd/dingbridge

# distroless/static has CA certificates (for calls to DingTalk) and tzdata,
# no shell, and a "nonroot" user (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dingbridge /usr/local/bin/dingbridge
USER nonroot:nonroot
EXPOSE 8080
ENV DINGBRIDGE_CONFIG=/etc/dingbridge/config.yaml
ENTRYPOINT ["/usr/local/bin/dingbridge"]
CMD ["serve"]
