# syntax=docker/dockerfile:1
# Multi-stage build: a static musl binary in a distroless, non-root image.

FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/engine.rs \
    && cargo build --release --locked --bin array-operator \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin array-operator \
    && strip target/release/array-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/release/array-operator /usr/local/bin/array-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/array-operator"]
CMD ["run"]
