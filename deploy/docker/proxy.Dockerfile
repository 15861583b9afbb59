# The TLS proxy in front of the gateway: Debian 12's own Caddy (package caddy, 2.6), so it builds from the same
# base image as ibsol's and needs no other registry. deploy/docker-compose.yml builds it as ${IBSOL_PROXY_IMAGE}.
# Build from deploy/docker:  docker build -f proxy.Dockerfile -t ibsol-proxy .
FROM debian:12-slim
# curl is the health check's client (the admin API on 127.0.0.1:2019 answers while Caddy runs its config).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends caddy ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# Caddy keeps certificates and its ACME account under $XDG_DATA_HOME (keep that volume, or certificates are
# requested again) and its autosaved config under $XDG_CONFIG_HOME. It runs as the package's user caddy; the
# compose file lets it bind 80 and 443 without capabilities (net.ipv4.ip_unprivileged_port_start=0).
RUN mkdir -p /data /config \
 && chown caddy:caddy /data /config
COPY Caddyfile /etc/caddy/Caddyfile
ENV XDG_DATA_HOME=/data \
    XDG_CONFIG_HOME=/config
VOLUME ["/data", "/config"]
USER caddy:caddy
WORKDIR /srv
EXPOSE 80 443
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:2019/config/"]
ENTRYPOINT ["caddy"]
CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
