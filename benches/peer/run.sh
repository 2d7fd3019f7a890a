#!/usr/bin/env bash
# Starts the Python peer of the ml service: gunicorn, 2 sync workers, one onnxruntime thread each.
# Usage: benches/peer/run.sh PORT   (binds 127.0.0.1:PORT; PEER_MODEL picks the model)
# Python environment: ./.venv-bench (or $BENCH_VENV) from requirements.txt, via scripts/venv.sh.
set -euo pipefail
port="${1:?usage: benches/peer/run.sh PORT}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || (( port < 1 || port > 65535 )); then
    echo "run.sh: PORT must be a number from 1 to 65535, got '$port'" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$("$here/../../scripts/venv.sh" "${BENCH_VENV:-$here/../../.venv-bench}" "$here/requirements.txt")"
# One compute thread per worker: onnxruntime is set to 1 intra-op thread in app.py; keep any
# OpenMP/BLAS pools from adding more.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec "$venv/bin/gunicorn" --chdir "$here" --workers 2 --worker-class sync \
    --bind "127.0.0.1:$port" --timeout 60 --graceful-timeout 10 --no-control-socket app:app
