# syntax=docker/dockerfile:1
# Multi-stage build: a static musl binary in a distroless, non-root image
# whose only file of ours is that binary.

FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# Stripped by cargo (no binutils needed); set before the first build so both
# builds share one profile and the dependencies are not rebuilt.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
# Dependencies first, so a source change does not rebuild them. Cargo reads
# every target Cargo.toml declares (the lib, the bin and the `engine` bench),
# so each gets a stub file.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/engine.rs \
    && cargo build --release --locked --bin array-operator \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
# touch: the copied sources may be older than the stubs' build outputs.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin array-operator

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="array-operator" \
      org.opencontainers.image.description="Kubernetes operator for Synology DSM and NGXStorage arrays" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/target/release/array-operator /usr/local/bin/array-operator
# Numeric, so the kubelet can check runAsNonRoot; OpenShift's restricted SCC
# replaces it with a UID of the namespace's range, which works as well (the
# binary writes no file).
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/array-operator"]
CMD ["run"]
