#!/usr/bin/env bash
# Builds every cargo fuzz target and runs each briefly from its checked-in corpus
# (fuzz/corpus/<target>/); fails on any crash, panic, timeout, leak or out-of-memory.
# Usage: fuzz/smoke.sh [seconds per target, default 20]
#
# Needs nothing but crates.io: cargo-fuzz is installed (pinned) into .tools/cargo, and the
# pinned stable toolchain builds the targets with RUSTC_BOOTSTRAP=1 (cargo fuzz passes nightly
# -Z flags; the sanitizer runtimes ship in rust-std for x86_64-unknown-linux-gnu). See
# fuzz/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET=${1:-20}
CARGO_FUZZ_VERSION=0.13.1
TOOLS="$ROOT/.tools/cargo"
CARGO_FUZZ="$TOOLS/bin/cargo-fuzz"
# Beside the workspace's build; cargo fuzz builds for an explicit --target, so nothing is shared.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz"
export RUSTC_BOOTSTRAP=1

if [ "$("$CARGO_FUZZ" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"

cd "$ROOT/fuzz"
started=$SECONDS
cargo fuzz build
echo "built the fuzz targets in $((SECONDS - started)) s"

# New inputs and crash artifacts go to a scratch directory, never into the checked-in corpus.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/corpus/$target" "$scratch/artifacts/$target"
    extra=()
    # jpeg-decoder decodes on detached per-component threads; LeakSanitizer now and then catches
    # one still exiting and reports its thread-local destructor list (32 bytes from
    # __cxa_thread_atexit_impl) as a leak, not reproducible on the same input (fuzz/README.md).
    if [ "$target" = photo_decode ]; then extra=(-detect_leaks=0); fi
    # libFuzzer counts its replay of the corpus against -max_total_time, and the larger corpora
    # take longer than the smoke's budget to replay: replay once on its own (-runs=0, which is
    # also the check that every checked-in input still runs clean), then give the fuzzing run
    # that replay time plus its own seconds.
    replay_started=$SECONDS
    if ! cargo fuzz run "$target" "corpus/$target" -- -runs=0 -timeout=10 -rss_limit_mb=2048 \
        "${extra[@]}" >"$scratch/$target.replay.log" 2>&1; then
        failed+=("$target")
        tail -n 40 "$scratch/$target.replay.log" >&2
        continue
    fi
    replay=$((SECONDS - replay_started))
    echo "==> $target: corpus replayed in ${replay} s, then ${SECONDS_PER_TARGET} s of fuzzing"
    if ! cargo fuzz run "$target" "$scratch/corpus/$target" "corpus/$target" -- \
        -max_total_time="$((replay + SECONDS_PER_TARGET))" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$scratch/artifacts/$target/" -print_final_stats=1 "${extra[@]}" \
        >"$scratch/$target.log" 2>&1; then
        failed+=("$target")
        tail -n 40 "$scratch/$target.log" >&2
        for artifact in "$scratch/artifacts/$target"/*; do
            [ -e "$artifact" ] || continue
            echo "crash input (base64) $(basename "$artifact"):" >&2
            base64 -w0 "$artifact" >&2
            echo >&2
        done
    fi
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::number_of_executed_units|^stat::average_exec_per_sec' \
        "$scratch/$target.log" || true
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz smoke failed: ${failed[*]} (add each crash input to fuzz/regressions/<target>/)" >&2
    exit 1
fi
echo "fuzz smoke: every target replayed its corpus and fuzzed ${SECONDS_PER_TARGET} s without a crash"
