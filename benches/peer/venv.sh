#!/usr/bin/env bash
# Makes sure the benchmarks' Python environment (the peer's and benches/*.py's) matches
# benches/peer/requirements.txt, creating or refreshing it when it is missing or stale; prints its
# path. Usage: benches/peer/venv.sh   (BENCH_VENV overrides the default ./.venv-bench)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${BENCH_VENV:-$root/.venv-bench}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
    echo "$want" > "$stamp"
fi
echo "$venv"
