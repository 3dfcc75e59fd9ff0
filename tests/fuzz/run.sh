#!/bin/sh
# Runs one libFuzzer harness for a set time: tests/fuzz/run.sh TARGET SECONDS
# New inputs go to build/fuzz/corpus/TARGET (the seeds in tests/fuzz/corpus
# are only read); a crash, leak, UB report or an input taking over 10 s
# (-timeout) stops it with a non-zero status and the input saved under
# build/fuzz/artifacts/.
set -eu
target=$1
seconds=$2
bin=build/fuzz/bin/$target
work=build/fuzz/corpus/$target
mkdir -p "$work" build/fuzz/artifacts
echo "== fuzz $target for ${seconds}s"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$target-" \
    "$work" "tests/fuzz/corpus/$target" >"build/fuzz/$target.log" 2>&1 || {
    status=$?
    tail -n 60 "build/fuzz/$target.log"
    echo "fuzz $target FAILED (status $status): see build/fuzz/$target.log and build/fuzz/artifacts/"
    exit 1
}
grep -E '^stat::number_of_executed_units|^Done' "build/fuzz/$target.log" | tr '\n' ' '
echo
