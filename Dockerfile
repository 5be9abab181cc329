# syntax=docker/dockerfile:1
#
# Caddy with the AHP plugin, on the official xcaddy builder pattern:
#
#   docker build -t caddy-ahp .
#   docker run --rm -p 8080:8080 -v "$PWD/Caddyfile:/etc/caddy/Caddyfile:ro" caddy-ahp
#
# CADDY_VERSION is the Caddy version go.mod pins (tests/configs checks that
# they agree). The build stage runs ./xcaddy.sh, the command README.md gives
# and tests/configs runs on a fresh clone, so what CI builds is what the image
# builds. See docs/deployment.md.
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder
# xcaddy.sh is a bash script; the builder image is Alpine.
RUN apk add --no-cache bash
# No file capabilities on the binary (the builder image sets
# XCADDY_SETCAP=1): a binary with cap_net_bind_service=+ep cannot even start
# where every capability is dropped (Kubernetes `drop: [ALL]`, OpenShift's
# restricted SCC): execve fails with EPERM. Our examples listen on :8080.
ENV XCADDY_SETCAP=0
WORKDIR /src
COPY . .
# The module and build caches persist between builds (BuildKit cache
# mounts), so a source change neither downloads nor compiles Caddy again.
RUN --mount=type=cache,target=/go/pkg/mod \
	--mount=type=cache,target=/root/.cache/go-build \
	./xcaddy.sh --output /usr/bin/caddy

FROM caddy:${CADDY_VERSION}
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
# A non-root user with a fixed id (Kubernetes' runAsUser, file ownership on
# the host). Docker lets non-root processes bind ports below 1024 in a
# container (net.ipv4.ip_unprivileged_port_start=0 since Docker 20.10), so
# :80/:443 still work there without capabilities; on Kubernetes listen on
# :8080 as the examples do, or add NET_BIND_SERVICE and setcap yourself.
RUN addgroup -S -g 10001 caddy \
	&& adduser -S -D -H -u 10001 -G caddy -h /data -s /sbin/nologin caddy \
	&& mkdir -p /config/caddy /data/caddy \
	&& chown -R caddy:caddy /config /data
USER caddy:caddy

LABEL org.opencontainers.image.title="caddy-ahp" \
	org.opencontainers.image.description="Caddy with the Agent Handshake Protocol (AHP) plugin" \
	org.opencontainers.image.licenses="Apache-2.0" \
	org.opencontainers.image.source="https://github.com/caddy-ahp/caddy-ahp"

EXPOSE 8080
# The admin API (localhost:2019 inside the container, Caddy's default)
# answers once a configuration is loaded. It is the one endpoint every
# Caddyfile has; with `admin off`, override this HEALTHCHECK. Kubernetes
# probes cannot reach localhost: examples/kubernetes uses a probe listener.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
	CMD wget -q -O /dev/null http://127.0.0.1:2019/reverse_proxy/upstreams || exit 1
# CMD and the /config, /data volumes are the official image's:
# caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
