# Handoff's production image: the api, worker, media, migrate and
# temporal-setup commands of one binary, built without the embedded Temporal
# server (-tags production) and without cgo.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -tags production -trimpath -ldflags="-s -w" -o /out/handoff ./cmd/handoff

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/handoff /usr/local/bin/handoff
USER nonroot
ENTRYPOINT ["/usr/local/bin/handoff"]
