#!/usr/bin/env bash
# Fuzzes the sans-IO protocol crate (crates/ftps-proto) with cargo-fuzz and
# libFuzzer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (all of `cargo fuzz list` by default) for SECONDS (default
# 30), one after the other, each in a single process (one core), and prints
# per target the number of executions (libFuzzer's final
# stat::number_of_executed_units) and whether it crashed. Exits non-zero if
# any target crashed (or failed to build).
#
# fuzz/ is a workspace of its own (its Cargo.toml has a `[workspace]` table),
# so `cargo test --workspace` at the root never builds it.
#
# Only stable Rust is needed: cargo-fuzz passes nightly-only -Z flags to
# rustc, which RUSTC_BOOTSTRAP=1 lets a stable toolchain accept.
#
# Corpora grow in fuzz/corpus/TARGET (git-ignored); the committed seeds in
# fuzz/seeds/TARGET are copied in at the start of each run. A crash-* file
# among the seeds is a known crash kept as a reproducer: the target fails on
# it at once until the bug is fixed. New crashes land in
# fuzz/artifacts/TARGET; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -a -s none TARGET artifacts/TARGET/crash-...
# (from fuzz/), minimize with `cargo fuzz tmin -a -s none TARGET FILE`.
#
# Environment:
#   FUZZ_ARGS   extra libFuzzer flags for every target (e.g. -max_len=8192)
#   FUZZ_SANITIZER  cargo fuzz --sanitizer (default none: ftps-proto has no
#               unsafe code, and without ASan libFuzzer runs 2-3x faster;
#               use address to get cargo-fuzz's default)
#   FTPS_FUZZ_STOP_AT_CLOSE=1   the session target stops feeding events once
#               the session is closed (skips its after-close check)
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
fuzz_dir="$root/fuzz"

seconds=30
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi

export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || exit 2
fi

cd "$fuzz_dir" || exit 2

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "no fuzz targets" >&2
    exit 2
fi

# -a: debug assertions and overflow checks, so arithmetic overflow is found
# as a crash. Each target runs in one process on one thread (no -jobs,
# -workers or -fork), so it uses one core.
build_flags=(-a -s "${FUZZ_SANITIZER:-none}")

# Build everything first, so that a build error is reported as such and the
# time limit of each target is spent fuzzing.
echo "== building ${targets[*]}" >&2
start=$(date +%s)
if [ $# -eq 0 ]; then
    cargo fuzz build "${build_flags[@]}" || { echo "build failed" >&2; exit 2; }
else
    for t in "${targets[@]}"; do
        cargo fuzz build "${build_flags[@]}" "$t" || { echo "build of $t failed" >&2; exit 2; }
    done
fi
echo "== built in $(($(date +%s) - start))s" >&2

mkdir -p logs
results=()
failed=0
for t in "${targets[@]}"; do
    corpus="corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    if [ -d "seeds/$t" ]; then
        cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    fi
    log="logs/$t.log"
    before=$(ls "artifacts/$t" | wc -l)
    echo "== fuzzing $t for ${seconds}s (log: fuzz/$log)" >&2
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    cargo fuzz run "${build_flags[@]}" "$t" "$corpus" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    after=$(ls "artifacts/$t" | wc -l)
    execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -n 1 | awk '{print $2}')
    if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
        status="CRASH"
        failed=1
        artifact=$(grep -a -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //')
        [ -n "$artifact" ] && status="CRASH ($artifact)"
        grep -a -m 1 -A 1 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY" "$log" >&2 || tail -n 20 "$log" >&2
    else
        status="ok"
    fi
    results+=("$(printf '%-14s %12s  %s' "$t" "${execs:-?}" "$status")")
done

printf '%-14s %12s  %s\n' target executions result
printf '%s\n' "${results[@]}"
exit "$failed"
