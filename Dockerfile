# syntax=docker/dockerfile:1
# The service in a distroless, non-root image whose healthcheck is the binary.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, as their own layer: it is rebuilt only when go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# The tests build the binary with this very line (image_test.go reads it).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/server .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
USER 65532:65532
# 8080 the API; 9464 the metrics listener (never published through nginx).
EXPOSE 8080 9464
ENV APP_ENV=production PORT=8080
# Exec form: the image has no shell. Docker's own timeout (4 s) is above the
# client's 3 s, so a slow answer is reported as such, not killed.
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s --retries=3 CMD ["/server", "-healthcheck"]
ENTRYPOINT ["/server"]
