# Multi-stage build of the registry server.
#
#   docker build -t artemis .
#   docker run --security-opt seccomp=deploy/seccomp/artemis-io-uring.json --ulimit memlock=-1 \
#       -p 8080:8080 -v artemis-data:/artemis-data artemis
#
# io_uring needs two things of the container runtime (deploy/README.md):
# - seccomp: Docker's default profile (since Docker 25; containerd's RuntimeDefault since 2.0)
#   blocks io_uring_setup, io_uring_enter and io_uring_register, and the server cannot start
#   without them. deploy/seccomp/artemis-io-uring.json is the default profile plus those three
#   calls (`--security-opt seccomp=unconfined` works too, with no filter at all).
# - locked memory: glommio refuses to start below 512 KiB of RLIMIT_MEMLOCK and registers 10 MiB
#   of I/O buffers per core; `--ulimit memlock=-1` lifts the limit.
# And a container limited to some CPUs (--cpuset-cpus) must name them in --cores: without it
# the server serves on every online core of the host.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace (.dockerignore leaves out target/ and .git): Cargo reads every member's
# manifest even to build one package. rusqlite builds SQLite from source (its `bundled` feature)
# and the mimalloc crate the allocator, both with this image's C compiler; the PostgreSQL client
# is pure Rust and no TLS library is linked, so the runtime image needs nothing beyond glibc.
COPY . .
RUN cargo build --release --locked -p artemis

FROM debian:bookworm-slim
# A user of its own with fixed ids (Kubernetes' runAsNonRoot checks a numeric user), owning the
# directory of the embedded management store.
RUN groupadd --system --gid 10001 artemis \
 && useradd --system --no-log-init --uid 10001 --gid artemis --home-dir /artemis-data \
        --no-create-home --shell /usr/sbin/nologin artemis \
 && mkdir /artemis-data \
 && chown artemis:artemis /artemis-data
COPY --from=build /src/target/release/artemis /usr/local/bin/artemis
# The health check: the image has no curl; this bash script asks GET /health itself.
COPY deploy/container/artemis-probe /usr/local/bin/artemis-probe
# management.db lives here; keep it on a volume (or use --management-db). A bind-mounted
# directory must be writable by uid 10001.
ENV ARTEMIS_DATA_DIR=/artemis-data
VOLUME /artemis-data
USER 10001:10001
EXPOSE 8080
# Healthy while the server answers /health with {"status":"up"}. It asks port 8080, or the port
# of ARTEMIS_ADDR when set; with another --addr on the command line, set ARTEMIS_PROBE_PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/artemis-probe", "/health"]
ENTRYPOINT ["artemis"]
CMD ["server", "--addr", "0.0.0.0:8080"]
