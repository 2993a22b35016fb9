# Multi-stage build of the registry server.
#
# io_uring needs a seccomp profile that allows it and enough locked memory; run with e.g.
#   docker run --security-opt seccomp=unconfined --ulimit memlock=-1 -p 8080:8080 artemis
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p artemis

FROM debian:bookworm-slim
COPY --from=build /src/target/release/artemis /usr/local/bin/artemis
EXPOSE 8080
ENTRYPOINT ["artemis"]
CMD ["server", "--addr", "0.0.0.0:8080"]
