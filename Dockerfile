# Sésame: one static binary on a distroless base, the release build
# (scripts/build-release: the BoringCrypto module linked in, for RSA
# signatures about twice as fast as Go's own).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN scripts/build-release /out && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sesame /usr/local/bin/sesame
# The data directory belongs to the nonroot user (uid 65532); a named volume
# mounted there starts with this ownership.
COPY --from=build --chown=65532:65532 /out/data /var/lib/sesame
WORKDIR /var/lib/sesame
ENV SESAME_DATA_DIR=/var/lib/sesame \
    SESAME_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/sesame"]
CMD ["serve"]
