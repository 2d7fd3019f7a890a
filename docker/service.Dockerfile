# One image per service (frontend, backend, ml); the same image runs as stable or canary, chosen by
# SERVICE_VERSION at run time. ml carries both models (EfficientNet-Lite0 and -Lite1, /model) and
# picks one by SERVICE_VERSION (or MODEL).
#
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=backend --build-arg PORT=8080 .
#
# BINARIES=builder (default) compiles in the rust image below, with cargo's registry and target
# directory in BuildKit cache mounts so a rebuild only recompiles what changed. BINARIES=host takes
# docker/.bin/<service>/ as built on the host instead (a static glibc binary, see
# docker/build-images.sh): no base image is pulled, and the runtime stage is the very same.
# Needs BuildKit (DOCKER_BUILDKIT=1), which builds only the stages the chosen one depends on.
ARG BINARIES=builder

FROM rust:1.95-bookworm AS builder
ARG SERVICE
WORKDIR /src
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ml decodes JPEGs with libjpeg-turbo, linked statically from Debian's libturbojpeg.a.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libturbojpeg0-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    triple="$(rustc -vV | sed -n 's/^host: //p')" \
    && RUSTFLAGS="-C target-feature=+crt-static" TURBOJPEG_STATIC=1 \
       cargo build --release --locked --target "$triple" -p "$SERVICE" \
    && mkdir -p "/out/$SERVICE" \
    && strip -o "/out/$SERVICE/service" "target/$triple/release/$SERVICE" \
    && if [ "$SERVICE" = ml ]; then \
         mkdir -p /out/ml/model \
         && cp ml/model/manifest.json ml/model/labels.txt ml/model/*.onnx /out/ml/model/; \
       fi

FROM scratch AS binaries-builder
ARG SERVICE
COPY --from=builder /out/${SERVICE}/ /out/

FROM scratch AS binaries-host
ARG SERVICE
COPY docker/.bin/${SERVICE}/ /out/

# hadolint ignore=DL3006
FROM binaries-${BINARIES} AS binaries

FROM scratch AS runtime
ARG SERVICE
ARG PORT
LABEL org.opencontainers.image.title="3rvision-${SERVICE}"
COPY --from=binaries /out/ /
# A fixed numeric uid/gid with no entry in /etc/passwd (there is none): never root.
USER 10001:10001
ENV PORT=${PORT} \
    SERVICE_VERSION=stable \
    MODEL_DIR=/model \
    RUST_LOG=info
EXPOSE ${PORT}
# No shell in the image: the binary probes its own /readyz (`<binary> healthcheck`, exit 0 = ready).
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=24 CMD ["/service", "healthcheck"]
ENTRYPOINT ["/service"]
