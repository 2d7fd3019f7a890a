#!/usr/bin/env bash
# Overload benchmark (issue 11): ml, backend and frontend as their own processes on loopback,
# loaded through the frontend's `POST /analyze` (JSON answer) with a ~100 KB JPEG.
#   1. the peak: a closed loop (oha, 8 connections) for --peak-seconds; its rate is the peak;
#   2. twice the peak, offered open-loop (oha -q) from up to 256 connections for --seconds:
#      the status mix (only 200 and 503 expected), p50/p99 latency, and each process's peak
#      resident memory (VmHWM) against its size before the load.
# Every tier runs with its default bounds (HTTP_MAX_IN_FLIGHT, MAX_CONCURRENT_ANALYSES, ML_WORKERS=2,
# ML_QUEUE_CAPACITY), so the figures show what they do. oha is installed with
# `cargo install --locked` into $CARGO_TARGET_DIR/tools on first use.
#
# Usage: benches/overload.sh [--seconds S] [--peak-seconds S] [--debug]
#   --debug  use the debug build (dependencies at opt-level 3, the workspace's own crates not
#            optimised) instead of building release binaries
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds=60
peak_seconds=15
profile=release
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --peak-seconds) peak_seconds="${2:?--peak-seconds needs a value}"; shift 2 ;;
    --debug) profile=debug; shift ;;
    *) echo "usage: benches/overload.sh [--seconds S] [--peak-seconds S] [--debug]" >&2; exit 2 ;;
    esac
done
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/$profile"
if [ "$profile" = release ]; then
    cargo build --release --quiet -p ml -p backend -p frontend
else
    cargo build --quiet -p ml -p backend -p frontend
fi
oha="$target/tools/bin/oha"
if [ ! -x "$oha" ]; then
    echo "== installing oha into $target/tools (long build)" >&2
    cargo install oha --locked --root "$target/tools" >&2
fi

pids=()
tmp="$(mktemp -d)"
log_prefix="$target/bench-overload"
# shellcheck source=benches/services.sh
. "$root/benches/services.sh"
cleanup() {
    stop_services
    rm -rf "$tmp"
}
trap cleanup EXIT

mem_mib() { awk -v f="$2:" '$1 == f {printf "%.1f", $2/1024}' "/proc/$1/status"; }

ml_port="$(free_port)"; backend_port="$(free_port)"; frontend_port="$(free_port)"
start ml "$ml_port"
start backend "$backend_port" ML_URL="http://127.0.0.1:$ml_port"
start frontend "$frontend_port" BACKEND_URL="http://127.0.0.1:$backend_port"
url="http://127.0.0.1:$frontend_port/analyze"

# One multipart form, as a browser sends it.
boundary=overload-bench-boundary
form="$tmp/form"
python3 - "$root/benches/images/cat-640x426-100k.jpg" "$form" "$boundary" <<'PY'
import sys
photo, out, boundary = sys.argv[1], sys.argv[2], sys.argv[3]
with open(photo, "rb") as f:
    data = f.read()
with open(out, "wb") as f:
    f.write(f"--{boundary}\r\ncontent-disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n"
            f"content-type: image/jpeg\r\n\r\n".encode())
    f.write(data)
    f.write(f"\r\n--{boundary}--\r\n".encode())
PY
load() { # load OHA-ARGS...: one oha run against the frontend, JSON summary on stdout
    "$oha" --no-tui --output-format json -m POST -T "multipart/form-data; boundary=$boundary" \
        -H 'accept: application/json' -D "$form" "$@" "$url"
}

# Warm every tier (connection pools, first inference), then take the sizes before the load.
load -n 20 -c 2 >/dev/null
declare -A before
for i in 0 1 2; do before[$i]="$(mem_mib "${pids[$i]}" VmRSS)"; done

echo "== peak: closed loop, 8 connections, ${peak_seconds} s" >&2
peak_json="$(load -z "${peak_seconds}s" -c 8)"
peak="$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["summary"]["requestsPerSec"], 1))' "$peak_json")"
offered="$(python3 -c 'import sys; print(max(1, round(2 * float(sys.argv[1]))))' "$peak")"
echo "== twice the peak: ${offered} requests/s offered for ${seconds} s" >&2
over_json="$(load -z "${seconds}s" -q "$offered" -c 256)"

python3 - "$peak_json" "$over_json" "$offered" "$seconds" \
    "${before[0]}" "$(mem_mib "${pids[0]}" VmHWM)" \
    "${before[1]}" "$(mem_mib "${pids[1]}" VmHWM)" \
    "${before[2]}" "$(mem_mib "${pids[2]}" VmHWM)" <<'PY' | tee "$target/bench-overload.json"
import json, sys
peak, over = json.loads(sys.argv[1]), json.loads(sys.argv[2])
offered, seconds = int(sys.argv[3]), int(sys.argv[4])
mem = dict(zip(["ml", "backend", "frontend"], zip(sys.argv[5::2], sys.argv[6::2])))
s, p = over["summary"], over["latencyPercentiles"]
codes = over.get("statusCodeDistribution", {})
total = sum(codes.values()) or 1
print(json.dumps({
    "peak_rps": round(peak["summary"]["requestsPerSec"], 1),
    "peak_p99_ms": round(peak["latencyPercentiles"]["p99"] * 1e3, 1),
    "offered_rps": offered,
    "seconds": seconds,
    "answered_rps": round(s["requestsPerSec"], 1),
    "status_mix": {code: f"{n} ({100 * n / total:.1f} %)" for code, n in sorted(codes.items())},
    "transport_errors": over.get("errorDistribution", {}),
    "p50_ms": round(p["p50"] * 1e3, 1),
    "p99_ms": round(p["p99"] * 1e3, 1),
    "rss_mib": {tier: {"before": float(b), "peak": float(h)} for tier, (b, h) in mem.items()},
}, indent=2))
PY
echo "machine: $(nproc) cores, $(lscpu | grep 'Model name' | cut -d: -f2 | xargs)" >&2
