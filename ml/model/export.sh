#!/usr/bin/env bash
# Makes the pinned model venv (/work/main/.venv-model by default) and runs the ONNX export.
# Usage: ml/model/export.sh [--check | --out DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$("$root/scripts/venv.sh" "${MODEL_VENV:-$root/.venv-model}" "$here/requirements.txt")"
exec "$venv/bin/python" "$here/export_onnx.py" "$@"
