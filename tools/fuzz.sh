#!/usr/bin/env bash
# Builds the libFuzzer targets t/fuzz/fuzz_*.c into build/fuzz/ (clang,
# ASan, UBSan) and runs each for FUZZ_SECONDS (default 10) on a copy of its
# seed corpus t/fuzz/corpus/NAME/, one target at a time.  Prints one line
# per target; exits non-zero if any crashed.
#
#   tools/fuzz.sh                    build and run every target
#   tools/fuzz.sh NAME...            only these targets (fuzz_sse ...)
#   tools/fuzz.sh --build-only
#
# New corpus entries stay in build/fuzz/corpus/NAME/ (kept between runs),
# reproducers of crashes in build/fuzz/artifacts/NAME/.  Replay one with
# build/fuzz/NAME FILE.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
core="$top/ngx_http_tokenguard_module/core"
out="$top/build/fuzz"
seconds=${FUZZ_SECONDS:-10}
cc=${FUZZ_CC:-clang}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-g -O1 -std=gnu99 -Wall -Wextra -Werror -I$core -I$top/t/fuzz"

build_only=0
names=()
for a in "$@"; do
    case "$a" in
    --build-only) build_only=1 ;;
    -*) echo "usage: $0 [--build-only] [fuzz_NAME ...]" >&2; exit 2 ;;
    *) names+=("${a%.c}") ;;
    esac
done

if [ ${#names[@]} -eq 0 ]; then
    for f in "$top"/t/fuzz/fuzz_*.c; do
        names+=("$(basename "$f" .c)")
    done
fi

die() {
    echo "$0: error: $*" >&2
    exit 1
}

command -v "$cc" >/dev/null 2>&1 \
    || die "$cc not found; libFuzzer needs clang and libclang-rt-14-dev" \
           "(make fuzz installs them)"

mkdir -p "$out/obj" "$out/corpus" "$out/artifacts"

# libFuzzer ships apart from clang on Debian (libclang-rt-14-dev)
probe="$out/obj/probe"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void) d; (void) n; return 0; }' > "$probe.c"
"$cc" -fsanitize=fuzzer $san -o "$probe" "$probe.c" 2>"$probe.log" \
    || die "$cc cannot link -fsanitize=fuzzer:" \
           "$(head -n1 "$probe.log");" \
           "install libclang-rt-14-dev (make fuzz does)"

# the core, instrumented once, linked into every target
objs=()
for src in "$core"/*.c; do
    obj="$out/obj/$(basename "$src" .c).o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] \
       || [ -n "$(find "$core" -name '*.h' -newer "$obj")" ]
    then
        "$cc" $cflags -fsanitize=fuzzer-no-link $san -c -o "$obj" "$src" \
            || die "cannot compile $src"
    fi
    objs+=("$obj")
done

for name in "${names[@]}"; do
    src="$top/t/fuzz/$name.c"
    [ -f "$src" ] || die "no such target: $src"
    "$cc" $cflags -fsanitize=fuzzer $san -o "$out/$name" "$src" \
        "${objs[@]}" -ljansson \
        || die "cannot build $name"
done

[ $build_only -eq 1 ] && { echo "built ${#names[@]} targets in $out"; exit 0; }

failed=0
for name in "${names[@]}"; do
    corpus="$out/corpus/$name"
    artifacts="$out/artifacts/$name/"
    log="$out/$name.log"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$top/t/fuzz/corpus/$name" ]; then
        cp -p "$top/t/fuzz/corpus/$name"/* "$corpus/"
    fi

    "$out/$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$artifacts" \
        -dict="$top/t/fuzz/tokenguard.dict" \
        "$corpus" >"$log" 2>&1
    rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")

    if [ $rc -eq 0 ]; then
        echo "$name: ok (${runs:-?} runs, ${speed:-?} exec/s)"
    else
        failed=1
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" \
                | tail -n1)
        echo "$name: CRASH ${repro:-(no reproducer, exit $rc)} (log: $log)"
    fi
done

exit $failed
