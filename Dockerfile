# Sésame: one static binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sesame ./cmd/sesame

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sesame /usr/local/bin/sesame
WORKDIR /var/lib/sesame
ENV SESAME_DATA_DIR=/var/lib/sesame \
    SESAME_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/sesame"]
CMD ["serve"]
