# syntax=docker/dockerfile:1
#
# sslvpn-gateway: a multi-stage build. The build stage compiles the release
# binary (protox compiles the contract, so no protoc; ring needs only the C
# compiler the rust image has); the runtime stage is distroless: glibc, CA
# certificates for the cloud's HTTPS endpoints, no shell, a non-root user.
#
#   docker build -t sslvpn-gateway .
#   docker run --rm -p 127.0.0.1:50051:50051 sslvpn-gateway serve --emulator
#
# Both stages are Debian 12 (bookworm), so the binary's glibc matches.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# The release profile keeps line tables for local debugging; the image drops
# them (63 MB -> 14 MB) and keeps the symbols, so backtraces still name functions.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
# The registry and target caches survive between builds (BuildKit); the
# binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sslvpn-gateway \
    && install -D -m 0755 target/release/sslvpn-gateway /out/sslvpn-gateway

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="sslvpn-gateway" \
      org.opencontainers.image.description="gRPC gateway that changes Alibaba Cloud SSL-VPN servers and follows each change until it is done" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/sslvpn-gateway /usr/local/bin/sslvpn-gateway
# Inside a container the listeners must face the container's network, not
# loopback: gRPC, and the admin HTTP listener (/metrics, /healthz, /readyz).
ENV SSLVPN_LISTEN=0.0.0.0:50051 \
    SSLVPN_ADMIN_LISTEN=0.0.0.0:9464
EXPOSE 50051 9464
# distroless's "nonroot" user (65532); numeric, so runAsNonRoot can check it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sslvpn-gateway"]
CMD ["serve"]
