#!/usr/bin/env bash
# Starts the Python peer of the ml service: gunicorn, 2 sync workers, one onnxruntime thread each.
# Usage: benches/peer/run.sh PORT   (binds 127.0.0.1:PORT; PEER_MODEL picks the model)
# Creates /work/main/.venv-bench (or $BENCH_VENV) from requirements.txt when it is missing or stale.
set -euo pipefail
port="${1:?usage: benches/peer/run.sh PORT}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || (( port < 1 || port > 65535 )); then
    echo "run.sh: PORT must be a number from 1 to 65535, got '$port'" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${BENCH_VENV:-$root/.venv-bench}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi
# One compute thread per worker: onnxruntime is set to 1 intra-op thread in app.py; keep any
# OpenMP/BLAS pools from adding more.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec "$venv/bin/gunicorn" --chdir "$here" --workers 2 --worker-class sync \
    --bind "127.0.0.1:$port" --timeout 60 --graceful-timeout 10 --no-control-socket app:app
