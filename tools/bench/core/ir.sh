#!/usr/bin/env bash
# Instructions per byte of the response side of make bench-core: each
# cell (bench_core's BENCH_RUNS mode) under callgrind, counting only
# bench_usage (the tg_sse + tg_usage_scan work of one response), RUNS
# times, divided by the bytes.
#
#   tools/bench/core/ir.sh DIR [RUNS [ONLY]]     DIR: make bench-core's
set -euo pipefail

dir=${1:?usage: $0 DIR [RUNS [ONLY]]}
runs=${2:-20}
only=${3:-}
top=$(cd "$(dirname "$0")/../../.." && pwd)
bin="$top/build/bench_core"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "| cell | bytes | instructions per byte |"
echo "| --- | --- | --- |"

BENCH_RUNS=1 BENCH_ONLY="$only" "$bin" "$dir" | while read -r cell bytes; do
    BENCH_RUNS=$runs BENCH_ONLY="$cell" valgrind --tool=callgrind \
        --collect-atstart=no --toggle-collect=bench_usage \
        --callgrind-out-file="$out/cg" "$bin" "$dir" >/dev/null 2>"$out/log"
    ir=$(awk '/^summary:/ { print $2 }' "$out/cg")
    awk -v c="$cell" -v b="$bytes" -v ir="$ir" -v n="$runs" \
        'BEGIN { printf "| %s | %d | %.2f |\n", c, b, ir / n / b }'
done
