#!/usr/bin/env bash
# The ml tier's benchmark, everything side by side in one run: tract (the Rust service's engine,
# with the project's fused depthwise and 1×1 operators, with tract's own conv_nhwc, and as exported) against
# onnxruntime on the same files and tensors; JPEG decode per decoder (libjpeg-turbo as the service
# runs it, jpeg-decoder as the lab runs it, zune-jpeg, Pillow's draft as the peer runs it); a
# per-operator profile of tract's final graph; start-up to ready and resident memory of the release
# binary; and — with --http — the Rust service against the Python peer under `oha`, then the
# service alone at 1 to twice the cores' number of workers.
#
# Usage: benches/run.sh [--runs N] [--http] [--http-seconds S] [--write-docs]
#   --runs N          timed calls per setup (default 100, at least 60)
#   --http            also load both services with oha (installs oha into target/tools first;
#                     a long build the first time)
#   --http-seconds S  duration of each oha point (default 10)
#   --write-docs      write the tables, the machine and a plot into docs/benchmarks.md and
#                     docs/ml-inference.svg (benches/report.py)
# Output: JSON lines on stdout; a short human summary on stderr. Timings drift ±10 % between runs
# on shared machines: compare within one run, quote ratios.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
runs=100
http=0
http_seconds=10
write_docs=0
while (( $# )); do
    case "$1" in
        --runs) runs="${2:?--runs needs a value}"; shift 2 ;;
        --http) http=1; shift ;;
        --http-seconds) http_seconds="${2:?--http-seconds needs a value}"; shift 2 ;;
        --write-docs) write_docs=1; shift ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if ! [[ "$runs" =~ ^[0-9]+$ ]] || (( runs < 60 )); then
    echo "run.sh: --runs must be a whole number of at least 60, got '$runs'" >&2
    exit 2
fi
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

# Every process and temporary file this run starts is stopped or removed however it ends.
pids=()
tmp_files=()
stop_started() { # stops every process in pids and forgets them
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
cleanup() {
    stop_started
    rm -f "${tmp_files[@]}"
}
trap cleanup EXIT

# ml's default build decodes with libjpeg-turbo (Debian's libturbojpeg0-dev, found by pkg-config).
if ! pkg-config --exists libturbojpeg 2>/dev/null; then
    echo "run.sh: libturbojpeg not found by pkg-config: apt-get install libturbojpeg0-dev pkg-config" >&2
    exit 1
fi
echo "== building the release binary and the benchmarks" >&2
cargo build --release --locked -p ml --bin ml --example bench_inference --example profile_model \
    --example bench_decode >&2


venv="$("$root/scripts/venv.sh" "${BENCH_VENV:-$root/.venv-bench}" "$here/peer/requirements.txt")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

# Every JSON line of the run also goes to $results, which --write-docs turns into the docs.
results="$(mktemp)"; tract_out="$(mktemp)"; ort_out="$(mktemp)"
tmp_files+=("$results" "$tract_out" "$ort_out")
emit() { tee -a "$results"; }

echo "== raw inference, same tensors, same run: tract (three ways) then onnxruntime" >&2
"$target/release/examples/bench_inference" --runs "$runs" | tee "$tract_out" | emit
"$venv/bin/python" "$here/ort_infer.py" --runs "$runs" | tee "$ort_out" | emit
"$venv/bin/python" - "$tract_out" "$ort_out" >&2 <<'EOF'
import json, sys
tract = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ort = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
for t in tract:
    if t.get("engine") != "tract":
        continue
    o = next((o for o in ort if o["model"] == t["model"] and o["setup"] == t["setup"]), None)
    if o is None:
        continue
    print(f'{t["model"]:20} {t["layout"]:5} {t["setup"]:20} tract {t["median_ms"]:7.2f} ms '
          f'({t["images_per_s"]:6.1f} img/s)  onnxruntime {o["median_ms"]:6.2f} ms '
          f'({o["images_per_s"]:6.1f} img/s)  ratio {t["median_ms"] / o["median_ms"]:.2f}')
EOF

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
now_ns() { date +%s%N; }
wait_ready() { # url timeout_s → prints seconds waited, fails on timeout
    local url="$1" limit_ns=$(( $2 * 1000000000 )) start
    start="$(now_ns)"
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        if (( $(now_ns) - start > limit_ns )); then return 1; fi
        sleep 0.02
    done
    awk -v ns="$(( $(now_ns) - start ))" 'BEGIN { printf "%.3f\n", ns / 1e9 }'
}

echo "== JPEG decode: the service's decoder, libjpeg-turbo, zune-jpeg, Pillow draft" >&2
"$target/release/examples/bench_decode" --runs "$runs" | emit
"$venv/bin/python" "$here/decode_pillow.py" --runs "$runs" | emit

echo "== where the time goes in tract's final graph (per operator kind)" >&2
for model in efficientnet-lite0 efficientnet-lite1; do
    "$target/release/examples/profile_model" --model "$model" --runs "$runs" | emit
done

echo "== start-up to ready and resident memory of the release binary" >&2
for version in stable canary; do
    port="$(free_port)"
    PORT="$port" SERVICE_VERSION="$version" RUST_LOG=warn "$target/release/ml" >/dev/null 2>&1 &
    pid=$!
    pids+=("$pid")
    if ready_s="$(wait_ready "http://127.0.0.1:$port/readyz" 60)"; then
        rss_ready="$(rss_mib "$pid")"
        curl -fsS -o /dev/null -H 'content-type: image/jpeg' --data-binary @"$here/images/espresso-640x480.jpg" \
            "http://127.0.0.1:$port/v1/classify"
        rss_after="$(rss_mib "$pid")"
        echo "{\"engine\":\"ml service\",\"service_version\":\"$version\",\"ready_s\":$ready_s,\"rss_mib_ready\":$rss_ready,\"rss_mib_after_first_request\":$rss_after}" | emit
    else
        echo "run.sh: ml ($version) was not ready within 60 s" >&2
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
done

if (( http )); then
    oha="$target/tools/bin/oha"
    if [[ ! -x "$oha" ]]; then
        echo "== installing oha into $target/tools (long build)" >&2
        cargo install oha --locked --root "$target/tools" >&2
    fi
    ml_port="$(free_port)"; peer_port="$(free_port)"
    PORT="$ml_port" ML_WORKERS=2 RUST_LOG=warn "$target/release/ml" >/dev/null 2>&1 &
    pids+=($!)
    "$here/peer/run.sh" "$peer_port" >/dev/null 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$ml_port/readyz" 60 >/dev/null
    wait_ready "http://127.0.0.1:$peer_port/readyz" 120 >/dev/null
    # load ENGINE SERVICE PORT IMAGE CONCURRENCY [KEY=VALUE...]: one oha point, one JSON line.
    load() {
        local engine=$1 service=$2 port=$3 image=$4 concurrency=$5 json
        shift 5
        json="$("$oha" -z "${http_seconds}s" -c "$concurrency" --no-tui --output-format json \
            -m POST -T image/jpeg -D "$here/images/$image" "http://127.0.0.1:$port/v1/classify")"
        "$venv/bin/python" -c '
import json, sys
d = json.loads(sys.argv[1]); s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
extra = {k: int(v) for k, v in (a.split("=", 1) for a in sys.argv[6:])}
print(json.dumps({"engine": sys.argv[2], "service": sys.argv[3], "image": sys.argv[4], "concurrency": int(sys.argv[5]),
    **extra, "rps": round(s["requestsPerSec"], 1), "p50_ms": round(p["p50"] * 1e3, 2),
    "p99_ms": round(p["p99"] * 1e3, 2), "status_codes": codes}))' \
            "$json" "$engine" "$service" "$image" "$concurrency" "$@" | emit
    }
    for image in espresso-640x480.jpg espresso-4000x3000.jpg; do
        for concurrency in 2 4; do
            load http ml "$ml_port" "$image" "$concurrency"
            load http peer "$peer_port" "$image" "$concurrency"
        done
    done
    stop_started

    # Workers against cores: the service alone, ML_WORKERS from 1 to twice the cores, at
    # concurrency 4 on the 640x480 photo (each worker runs one single-threaded inference).
    # (nproc alone would answer 1: it honours the OMP_NUM_THREADS=1 exported above for the peer.)
    cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
    for (( workers = 1; workers <= 2 * cores; workers++ )); do
        ml_port="$(free_port)"
        PORT="$ml_port" ML_WORKERS="$workers" RUST_LOG=warn "$target/release/ml" >/dev/null 2>&1 &
        pids=($!)
        wait_ready "http://127.0.0.1:$ml_port/readyz" 60 >/dev/null
        load workers ml "$ml_port" espresso-640x480.jpg 4 "workers=$workers" "cores=$cores"
        stop_started
    done
fi

if (( write_docs )); then
    machine="$(mktemp)"; tmp_files+=("$machine")
    "$venv/bin/python" "$here/machine.py" > "$machine"
    "$venv/bin/python" "$here/report.py" "$results" "$machine" "$root/docs/benchmarks.md" \
        "$root/docs/ml-inference.svg"
    echo "== wrote docs/benchmarks.md and docs/ml-inference.svg" >&2
fi
