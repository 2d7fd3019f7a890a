#!/usr/bin/env bash
# The project's one test command (README "Test"): installs what the tests need on a fresh Debian
# machine, then runs every check. Usage: scripts/test.sh
#   - Debian libturbojpeg0-dev + pkg-config (ml's JPEG decoder), chromium + chromium-driver (browser
#     test), Python tools into ./.venv (pinned)
#   - shellcheck on every tracked shell script; cargo fmt --check, cargo clippy -D warnings, cargo test
#     for the whole workspace; cargo deny (licenses, bans, sources) with a pinned cargo-deny;
#     fuzz/smoke.sh (every cargo fuzz target briefly from its corpus)
#   - mesh/deploy: render every overlay, schema / Istio-model / lint / policy checks, `mesh check`
#   - upstream tools built from their Go modules judge mesh/deploy, the Istio install and terraform/:
#     istioctl validate/analyze, helm-rendered Istio charts, terraform fmt, checkov, the kind walk,
#     and Istio's pilot as the routing oracle (tests/upstream/)
#   - the local lab: a real browser uploads a photo; `mesh demo` checks the canary split per hop
# Ends with one line `total: N passed, N failed` (one per step) and exits non-zero on any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
VENV="$ROOT/.venv"
# Where cargo puts the binaries the lab steps run (CARGO_TARGET_DIR is honoured).
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
# Where tests/upstream/tools.sh puts istioctl, helm and the oracle (kept between runs, rebuilt when
# a pin changes).
export UPSTREAM_TOOLS="${UPSTREAM_TOOLS:-$ROOT/.tools}"
passed=0
failed=0
failures=()

step() { printf '\n==> %s\n' "$*"; }
# run_ok NAME COMMAND...: like run, and answers whether the step passed.
run_ok() {
    local before=$failed
    run "$@"
    [ "$failed" -eq "$before" ]
}
run() { # run NAME COMMAND...: one counted step
    local name=$1
    shift
    step "$name"
    local started=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "--- $name: ok ($((SECONDS - started)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "--- $name: FAILED ($((SECONDS - started)) s)"
    fi
}

# install_debian_packages PACKAGE...: apt-get installs those of the named packages dpkg lacks
# (the package lists are updated once per run, by the first call that has something to install).
APT_UPDATED=0
install_debian_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${sudo[@]}" apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The lab's build of ml-photo (no libjpeg-turbo: JPEG pixels from jpeg-decoder) is not the one the
# workspace's clippy and tests unify to, so it gets its own lint and test run.
pure_rust_decoder() {
    cargo clippy -p ml-photo --all-targets --locked -- -D warnings &&
        cargo test -p ml-photo --locked
}

install_python_tools() {
    local stamp="$VENV/.requirements.sha256"
    local want
    want=$(cat tests/requirements.txt tests/mesh/constraints.txt | sha256sum | cut -d' ' -f1)
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt &&
        echo "$want" >"$stamp"
}

# rust-toolchain.toml pins 1.95.0; machines of this project ship it as `stable`. Link it when the
# pinned name is missing so that cargo never tries to download a toolchain.
ensure_rust_toolchain() {
    local pinned
    pinned=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
    (cd / && rustup toolchain list) | grep -q "^$pinned" && return 0
    local stable
    stable=$(cd / && rustup run stable rustc --version 2>/dev/null | cut -d' ' -f2)
    if [ "$stable" = "$pinned" ]; then
        (cd / && rustup toolchain link "$pinned" "$(cd / && rustup run stable rustc --print sysroot)")
    else
        echo "rust $pinned is not installed (stable is $stable)" >&2
        return 1
    fi
}

# cargo-deny, pinned, built from crates.io into ./.tools/cargo (skipped when that version is there).
CARGO_DENY_VERSION=0.20.2
CARGO_DENY="$ROOT/.tools/cargo/bin/cargo-deny"
install_cargo_deny() {
    if [ -x "$CARGO_DENY" ] && [ "$("$CARGO_DENY" --version)" = "cargo-deny $CARGO_DENY_VERSION" ]; then
        return 0
    fi
    cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION" --root "$ROOT/.tools/cargo" \
        --target-dir "${CARGO_TARGET_DIR:-$ROOT/target}/tools"
}

# deny.toml: licenses, bans (duplicates warn), sources. Advisories need the RustSec database, a git
# repository on GitHub that these machines cannot reach, so they are not checked here. cargo deny
# reads `cargo metadata` for every platform, so every locked package is fetched first (the builds
# before it fetched only this platform's).
cargo_deny() {
    cargo fetch --locked --quiet &&
        "$CARGO_DENY" --offline --locked check licenses bans sources
}

# The check must be able to fail: a policy that allows only Apache-2.0 must reject the tree, and
# for that reason (a rejected MIT license), not because cargo deny could not run.
cargo_deny_rejects_a_broken_policy() {
    local rc=0 out
    out=$("$CARGO_DENY" --offline --locked --config tests/deny/rejects-mit.toml check licenses 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "cargo deny accepted tests/deny/rejects-mit.toml" >&2
        return 1
    fi
    if ! grep -q "rejected" <<<"$out" || ! grep -q "MIT" <<<"$out"; then
        echo "cargo deny failed on tests/deny/rejects-mit.toml, but not by rejecting MIT:" >&2
        tail -n 20 <<<"$out" >&2
        return 1
    fi
    echo "cargo deny rejected the tree under tests/deny/rejects-mit.toml: $(grep -c "rejected" <<<"$out") rejections naming licenses"
}

mesh_check_rendered() {
    local ok=0
    for rendered in target/mesh-rendered/*.yaml; do
        echo "mesh check $rendered"
        "$BIN/mesh" check "$rendered" || ok=1
    done
    return $ok
}

LAB_PID=""
LAB_URL=""
stop_lab() {
    [ -n "$LAB_PID" ] || return 0
    kill -TERM "$LAB_PID" 2>/dev/null
    wait "$LAB_PID" 2>/dev/null
    LAB_PID=""
}
trap 'stop_lab; docker_cleanup' EXIT

start_lab() {
    local out=target/lab-test.out
    RUST_LOG=warn "$BIN/lab" --listen 127.0.0.1:0 >"$out" 2>&1 &
    LAB_PID=$!
    for _ in $(seq 1 300); do
        LAB_URL=$(sed -n 's/^3RVision lab is up: open //p' "$out")
        [ -n "$LAB_URL" ] && { cat "$out"; return 0; }
        kill -0 "$LAB_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "the lab did not come up:" >&2
    cat "$out" >&2
    return 1
}

browser_upload() {
    "$VENV/bin/python" tests/browser/upload.py --url "$LAB_URL" \
        --photo ml/tests/fixtures/photos/coffee.jpg --expect espresso \
        --screenshot target/browser/result.png
}

# The browser check must be able to fail: the same upload with a label the page cannot name must
# fail with exactly "expected text not found" (exit 3), not with a crash or a missing driver.
browser_rejects_a_wrong_answer() {
    local rc=0
    "$VENV/bin/python" tests/browser/upload.py --url "$LAB_URL" \
        --photo ml/tests/fixtures/photos/coffee.jpg --expect "zebra" || rc=$?
    if [ "$rc" -ne 3 ]; then
        echo "expected the browser check to fail with 'expected text not found' (exit 3), got exit $rc" >&2
        return 1
    fi
}

# Every shell script git tracks.
shellcheck_scripts() {
    git ls-files -z '*.sh' | xargs -0 "$VENV/bin/shellcheck"
}

mesh_demo() {
    "$BIN/mesh" demo --url "$LAB_URL" --requests 200 \
        --image ml/tests/fixtures/photos/coffee.jpg --config mesh/deploy/rendered/90-10.yaml
}

# TEST_STAGES=docker runs only the setup and the docker compose stage (for working on docker/).
STAGES=${TEST_STAGES:-all}
# shellcheck source=tests/docker/stage.sh
. tests/docker/stage.sh

run "setup: rust toolchain" ensure_rust_toolchain
run "setup: python tools (.venv)" install_python_tools
# ml decodes JPEGs with libjpeg-turbo (Debian's, found by pkg-config; the images link it statically).
run "setup: debian packages for the build (libturbojpeg0-dev, pkg-config)" \
    install_debian_packages libturbojpeg0-dev pkg-config
if [ "$STAGES" = all ]; then
    run "setup: debian packages (chromium, chromium-driver)" install_debian_packages chromium chromium-driver
    run "shellcheck (every tracked shell script)" shellcheck_scripts
    run "cargo fmt --check" cargo fmt --all --check
    run "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
    run "setup: cargo-deny $CARGO_DENY_VERSION (.tools/cargo)" install_cargo_deny
    run "cargo deny check licenses bans sources (deny.toml)" cargo_deny
    run "cargo deny rejects a broken policy (tests/deny/rejects-mit.toml)" cargo_deny_rejects_a_broken_policy
    run "cargo test" cargo test --workspace --locked
    run "ml-photo without libjpeg-turbo (the lab's decoder): clippy and tests" pure_rust_decoder
    # Builds the libFuzzer targets (about 13 min cold on 2 cores) and runs each 20 s from its corpus.
    run "fuzz smoke (fuzz/smoke.sh)" bash fuzz/smoke.sh
    run "mesh/deploy: render and validate (tests/mesh/check.sh)" bash tests/mesh/check.sh
    run "mesh/deploy: mesh check on every rendered overlay" mesh_check_rendered
    if run_ok "upstream tools: istioctl, helm, terraform from their Go modules (tests/upstream/tools.sh)" \
        bash tests/upstream/tools.sh; then
        run "upstream: istioctl validate/analyze, Istio's charts, terraform/, the kind walk (tests/upstream/check.sh)" \
            env PATH="$UPSTREAM_TOOLS/bin:$PATH" bash tests/upstream/check.sh
        run "upstream: Istio's pilot as the routing oracle for every overlay (tests/upstream/oracle.sh)" \
            env MESH_BIN="$BIN/mesh" bash tests/upstream/oracle.sh
    fi
    run "local lab: start" start_lab
    if [ -n "$LAB_PID" ]; then
        run "local lab: a real browser uploads a photo" browser_upload
        run "local lab: the browser check fails on a wrong expectation" browser_rejects_a_wrong_answer
        run "local lab: mesh demo (canary split per hop)" mesh_demo
    fi
    stop_lab
fi
docker_stage

echo
[ ${#failures[@]} -eq 0 ] || printf 'failed step: %s\n' "${failures[@]}"
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
