#!/usr/bin/env bash
# Fuzzes the readers of untrusted bytes (safetensors, JSON, layer config, checkpoint) with libFuzzer and
# AddressSanitizer, SECONDS_PER_TARGET seconds each (default 60). Crashing inputs are copied to
# Tests/FuzzCorpus/<target>/, where the test suite replays them (FuzzCorpusTests).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-60}"
shift || true
targets=("${@:-safetensors json config checkpoint}")
read -r -a targets <<< "${targets[*]}"

scratch=.build-fuzz
swift build --scratch-path "$scratch" --target CCA --sanitize fuzzer --sanitize address 2>&1 | tail -1
objects=$(find "$scratch/debug/CCA.build" "$scratch/debug/RealModule.build" "$scratch/debug/_NumericsShims.build" -name '*.o' | sort)
shims="$scratch/checkouts/swift-numerics/Sources/_NumericsShims/include"
swiftc -parse-as-library -sanitize=fuzzer,address -I "$scratch/debug/Modules" -I "$shims" \
    scripts/fuzz/FuzzMain.swift $objects -o "$scratch/cca-fuzz" 2> "$scratch/link.log" \
    || { cat "$scratch/link.log"; exit 1; }

export ASAN_OPTIONS=detect_leaks=0
total_crashes=0
for target in "${targets[@]}"; do
    corpus="$scratch/corpus-$target"
    artifacts="$scratch/artifacts-$target/"
    regression="Tests/FuzzCorpus/$target"
    mkdir -p "$corpus" "$artifacts" "$regression"
    CCA_FUZZ_TARGET=$target CCA_FUZZ_SEEDS="$corpus" "$scratch/cca-fuzz"
    # The checkpoint seed is a whole small model, so its inputs may be long.
    max_len=4096; [ "$target" = checkpoint ] && max_len=65536
    set +e
    CCA_FUZZ_TARGET=$target "$scratch/cca-fuzz" -max_total_time="$budget" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=4096 -artifact_prefix="$artifacts" -print_final_stats=1 "$corpus" "$regression" \
        > "$scratch/log-$target.txt" 2>&1
    status=$?
    set -e
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$scratch/log-$target.txt" | grep -Eo '[0-9]+$' || echo "?")
    crashes=0
    for found in "$artifacts"crash-* "$artifacts"timeout-* "$artifacts"oom-*; do
        [ -e "$found" ] || continue
        cp "$found" "$regression/"
        crashes=$((crashes + 1))
    done
    total_crashes=$((total_crashes + crashes))
    echo "$target: $runs executions in ${budget} s, exit status $status, $crashes crashing input(s) kept in $regression"
    [ "$crashes" -eq 0 ] || grep -m1 -A12 'ERROR\|Fatal error\|deadly signal' "$scratch/log-$target.txt" || true
done
echo "crashing inputs found: $total_crashes"
