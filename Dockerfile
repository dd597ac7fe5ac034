# saml-validator container image.
#   docker build -t saml-validator:0.1.0 --build-arg GIT_REVISION=$(git rev-parse --short=12 HEAD) .
# scripts/check-image.sh verifies (without a Docker engine) that the runtime stage installs every
# shared library the release binary links; it parses the runtime `apt-get install` line below.

FROM rust:1-bookworm AS builder
# -dev packages for the openssl-sys and libxml crates; protoc is vendored by build.rs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev libxml2-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# .git is not in the build context, so build.rs cannot ask git: pass the revision instead
# (it becomes the `revision` label of saml_build_info).
ARG GIT_REVISION=unknown
ENV SAML_VALIDATOR_GIT_REVISION=${GIT_REVISION}
# --locked: exactly the dependency versions that were tested.
RUN cargo build --release --locked \
 && install -m 0755 target/release/saml-validator /usr/local/bin/saml-validator

FROM debian:bookworm-slim AS runtime
# Only the shared libraries the binary links (OpenSSL 3, libxml2) plus CA roots for metadata_url
# fetches over https. Keep this list in sync with `ldd`: scripts/check-image.sh enforces it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libxml2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Fixed numeric uid/gid so Kubernetes runAsNonRoot can verify it without /etc/passwd lookups.
RUN groupadd --system --gid 10001 saml-validator \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin saml-validator
COPY --from=builder /usr/local/bin/saml-validator /usr/local/bin/saml-validator
# The service writes nothing to disk (logs go to stderr, caches are in memory), so the root
# filesystem can be mounted read-only. The config directory is where the Helm chart mounts it.
WORKDIR /etc/saml-validator
USER 10001:10001
EXPOSE 8080 9090 9100
# No HEALTHCHECK: orchestrators probe GET /healthz and /readyz (or gRPC health) themselves.
ENTRYPOINT ["saml-validator"]
CMD ["serve", "--config", "/etc/saml-validator/config.toml"]
