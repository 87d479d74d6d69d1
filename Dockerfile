# Fast-Flow server image. Build: docker build -t fastflow .
# The pipeline runs themselves use WORKER_BASE_IMAGE, not this image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock VERSION ./
COPY src src
COPY migrations migrations
COPY templates templates
COPY static static
RUN cargo build --release --locked && strip target/release/fastflow

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/fastflow /usr/local/bin/fastflow
COPY examples /opt/fastflow/examples
# Not root: the server reaches the engine over DOCKER_HOST (a socket proxy), and
# its pipelines then run as this uid too. DATA_DIR must be writable by it.
RUN useradd --system --uid 10001 --home-dir /opt/fastflow --shell /usr/sbin/nologin fastflow \
    && mkdir -p /opt/fastflow/data && chown fastflow /opt/fastflow/data
USER 10001
WORKDIR /opt/fastflow
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/opt/fastflow/data \
    PIPELINES_DIR=/opt/fastflow/examples/pipelines
EXPOSE 8000
# bash, not sh: Debian's sh (dash) has no /dev/tcp.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000"]
ENTRYPOINT ["/usr/local/bin/fastflow"]
CMD ["serve"]
