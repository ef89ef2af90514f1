# minitwin's production image: the one `minitwin` binary (simulator, CLI and `minitwin node`)
# with the shipped scenarios and deploy files. Multi-stage: the build stage has the Rust
# toolchain; the image has the binary on a slim Debian.
#
#   docker build -t minitwin .
#   docker compose -f deploy/compose/compose.yaml up        # the loopback topology
#   docker run --rm minitwin run scenarios/steady.toml      # the simulator, same binary
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin minitwin \
 && strip target/release/minitwin

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/minitwin minitwin \
 && mkdir -p /var/lib/minitwin /etc/minitwin \
 && chown minitwin /var/lib/minitwin
COPY --from=build /src/target/release/minitwin /usr/local/bin/minitwin
COPY --from=build /src/scenarios /opt/minitwin/scenarios
COPY --from=build /src/deploy /opt/minitwin/deploy
WORKDIR /opt/minitwin
USER minitwin
# Peers on 7100, HTTP (/metrics, /healthz, a gateway's routes) on 9100.
EXPOSE 7100 9100
ENTRYPOINT ["minitwin"]
CMD ["--help"]
