#!/usr/bin/env bash
# Three-hop overhead benchmark (issue: mesh-aware runtime): client → frontend → backend → ml on
# loopback, each tier its own release process (stable builds), loaded through the frontend's
# `POST /analyze` (JSON) with a ~100 KB JPEG. Reports the peak rate, then p50/p99 of the end-to-end
# time and of the overhead (end-to-end minus the time ml reports for its own work) at 50 % and at
# 5 % of the peak, each tier's CPU time per request, and the resident memory of every process
# afterwards.
#
# Usage: benches/hops.sh [--seconds S]   (default 10 s per phase)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds=10
[ "${1:-}" = "--seconds" ] && seconds="${2:?--seconds needs a value}"
image=benches/images/cat-640x426-100k.jpg

cargo build --release --quiet -p ml -p backend -p frontend -p lab --bins --example hop_overhead
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release"

pids=()
log_prefix="$target/bench"
# shellcheck source=benches/services.sh
. "$root/benches/services.sh"
trap stop_services EXIT

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

ml_port="$(free_port)"; backend_port="$(free_port)"; frontend_port="$(free_port)"
start ml "$ml_port" ML_WORKERS="${ML_WORKERS:-2}"
start backend "$backend_port" ML_URL="http://127.0.0.1:$ml_port"
start frontend "$frontend_port" BACKEND_URL="http://127.0.0.1:$backend_port"

"$bin/examples/hop_overhead" --url "http://127.0.0.1:$frontend_port" --image "$image" --seconds "$seconds" \
    --pid "ml=${pids[0]}" --pid "backend=${pids[1]}" --pid "frontend=${pids[2]}" --clock-ticks "$(getconf CLK_TCK)" |
    tee "$target/bench-hops.json"
printf '{"rss_mb":{"ml":%s,"backend":%s,"frontend":%s}}\n' \
    "$(rss_mb "${pids[0]}")" "$(rss_mb "${pids[1]}")" "$(rss_mb "${pids[2]}")" | tee -a "$target/bench-hops.json"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
