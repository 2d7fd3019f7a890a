#!/usr/bin/env bash
# Makes sure a Python venv matches a pinned requirements file: creates it, or refreshes it when
# the file's hash differs from the one stamped at its last install; prints the venv's path.
# Usage: scripts/venv.sh VENV REQUIREMENTS
set -euo pipefail
venv="${1:?usage: scripts/venv.sh VENV REQUIREMENTS}"
requirements="${2:?usage: scripts/venv.sh VENV REQUIREMENTS}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
    echo "$want" > "$stamp"
fi
echo "$venv"
