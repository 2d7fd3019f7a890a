#!/usr/bin/env bash
# Makes the pinned model venv (/work/main/.venv-model by default) and runs the ONNX export.
# Usage: ml/model/export.sh [--check | --out DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${MODEL_VENV:-$root/.venv-model}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi
exec "$venv/bin/python" "$here/export_onnx.py" "$@"
