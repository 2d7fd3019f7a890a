# Starting and stopping the three services for a benchmark (sourced by benches/hops.sh and
# benches/overload.sh). The caller sets `bin` (the directory of the built binaries) and
# `log_prefix` (each service logs to "$log_prefix-NAME.log"), and declares the array `pids`.
# shellcheck shell=bash disable=SC2154

# A port the kernel just handed out and released: no fixed ports, so runs never collide.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME PORT ENV...: runs $bin/NAME on PORT with ENV, records its pid, and waits up to 30 s
# for its /readyz.
start() {
    local name=$1 port=$2 log
    shift 2
    log="$log_prefix-$name.log"
    env RUST_LOG=warn PORT="$port" "$@" "$bin/$name" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 600); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "$name did not get ready; see $log" >&2
    return 1
}

# stop_services: TERM to every started service, then waits for them.
stop_services() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
