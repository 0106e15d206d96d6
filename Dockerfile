# hypercache-server container image.
#
# Base images are build arguments. With a registry the defaults work as they are:
#   docker build -t hypercache-server:local .
# Without one, build local base images first (debootstrap + docker import) and point at them
# (scripts/docker-deps.sh vendors the crates if containers cannot download them):
#   scripts/docker-base.sh && scripts/docker-deps.sh
#   docker build --build-arg RUST_IMAGE=hypercache/rust-base:1.95.0 \
#                --build-arg RUNTIME_IMAGE=hypercache/runtime-base:bookworm -t hypercache-server:local .
#
# Running it needs io_uring and locked memory (docs/operations.md, ops.md 7.3-7.4):
#   docker run --security-opt seccomp=deploy/seccomp-io_uring.json --ulimit memlock=-1:-1 \
#              -p 8080:8080 -p 8081:8081 hypercache-server:local
#
# Works with the classic builder and with BuildKit (no BuildKit-only syntax).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
WORKDIR /src

# 1. Dependencies only, in their own layer: it is rebuilt only when Cargo.toml or Cargo.lock
#    change. Every target file the manifest names (and the default src/main.rs, src/lib.rs) is a
#    stub here.
# build.rs records the commit for --version; without .git in the context, pass it:
#   --build-arg HYPERCACHE_GIT_COMMIT=$(git rev-parse --short=12 HEAD)
ARG HYPERCACHE_GIT_COMMIT=
COPY Cargo.toml Cargo.lock build.rs ./
# glommio with one io_uring setup flag added (vendor/glommio/PATCHED.md), via [patch.crates-io].
COPY vendor ./vendor
# Normally only a README. Where containers cannot download crates, scripts/docker-deps.sh puts a
# `cargo vendor` tree and a config.toml pointing at it here, and the build runs offline.
COPY deploy/docker-cargo/ /usr/local/share/hypercache-cargo/
RUN set -eu; \
    if [ -f /usr/local/share/hypercache-cargo/config.toml ]; then \
        mkdir -p .cargo; cp /usr/local/share/hypercache-cargo/config.toml .cargo/config.toml; \
    fi; \
    stubs=$(awk ' \
        /^\[\[bench\]\]/ {d="benches"; next} /^\[\[test\]\]/ {d="tests"; next} \
        /^\[\[example\]\]/ {d="examples"; next} /^\[\[bin\]\]/ {d="src/bin"; next} /^\[/ {d=""; next} \
        d != "" && /^[ \t]*name[ \t]*=/ {match($0, /"[^"]*"/); print d "/" substr($0, RSTART+1, RLENGTH-2) ".rs"} \
        /^[ \t]*path[ \t]*=[ \t]*"[^"]*[.]rs"/ {match($0, /"[^"]*"/); print substr($0, RSTART+1, RLENGTH-2)}' Cargo.toml); \
    for f in src/main.rs src/lib.rs $stubs; do \
        mkdir -p "$(dirname "$f")"; echo 'fn main() {}' > "$f"; \
    done; \
    cargo build --release --locked; \
    rm -rf src target/release/hypercache-server* target/release/deps/hypercache_server-* \
        target/release/deps/libhypercache-* target/release/deps/hypercache-* \
        target/release/.fingerprint/hypercache-*

# 2. The real sources. touch: COPY keeps the files' old mtimes, older than the stubs' build.
COPY src ./src
RUN set -eu; \
    find src -name '*.rs' -exec touch {} +; \
    cargo build --release --locked --bin hypercache-server; \
    install -D -m 0755 target/release/hypercache-server /out/hypercache-server

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# A fixed, non-root uid/gid so that volume permissions and Kubernetes runAsUser are predictable.
RUN groupadd --system --gid 10001 hypercache \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin hypercache
COPY --from=build /out/hypercache-server /usr/local/bin/hypercache-server

# 8080 client API, 8081 management API, 7946 dist (peer) listener.
ENV HYPERCACHE_API_ADDR=:8080 \
    HYPERCACHE_MGMT_ADDR=:8081 \
    HYPERCACHE_DIST_ADDR=:7946 \
    HYPERCACHE_LOG_LEVEL=info
EXPOSE 8080 8081 7946
USER 10001:10001
# SIGTERM drains and shuts down gracefully (give it HYPERCACHE_SHUTDOWN_TIMEOUT, 30 s by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hypercache-server"]
