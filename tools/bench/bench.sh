#!/usr/bin/env bash
# make bench: plain nginx proxy (A) against nginx + tokenguard with every
# feature on (B), same canned provider, same load, alternating sides so
# machine drift hits both; medians of ROUNDS runs.  Writes
# build/bench/results.md (pasted into BENCHMARKS.md by hand).
#
#   DURATION=10s CONNS=32 ROUNDS=3 STREAMS=2000 LEASE=on tools/bench/bench.sh
#   (LEASE=off: B reserves in Redis per request, without budget leases;
#   ONLY=load or ONLY=streams runs one half)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/tools/bench"
dir="$top/build/bench"
nginx=${TG_NGINX_BIN:-/usr/sbin/nginx}

DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-3}
STREAMS=${STREAMS:-2000}
UPSTREAM=18801 PORT_A=18802 PORT_B=18803 REDIS=18804

command -v wrk >/dev/null || TG_EXTRA_PKGS=wrk "$top/tools/install-deps.sh"
[ -f "$top/build/ngx_http_tokenguard_module.so" ] || make -C "$top" module

rm -rf "$dir"
mkdir -p "$dir/logs" "$dir/temp"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# the canned provider's answers and the request bodies
perl - "$dir" <<'PERL'
my $d = shift;
my $usage = '"usage":{"prompt_tokens":412,"completion_tokens":96,'
          . '"total_tokens":508,"prompt_tokens_details":{"cached_tokens":0}}';
open my $f, '>', "$d/response.json" or die;
print $f '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
       . '"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop",'
       . '"message":{"role":"assistant","content":"' . ('benchmark answer ' x 20)
       . '"}}],' . $usage . '}';
close $f;
open $f, '>', "$d/response.sse" or die;
for my $i (1 .. 100) {
    print $f 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",'
           . '"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":'
           . "\"token$i \"}}]}\n\n";
}
print $f 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",'
       . '"model":"gpt-4o-mini","choices":[],' . $usage . "}\n\ndata: [DONE]\n\n";
close $f;
my $prompt = 'Please review the following design notes and list the risks. '
           x 25;
for my $s (0, 1) {
    open $f, '>', "$d/body" . ($s ? '-stream' : '') . '.json' or die;
    print $f '{"model":"gpt-4o",' . ($s ? '"stream":true,' : '')
           . '"messages":[{"role":"system","content":"You are a careful'
           . ' reviewer."},{"role":"user","content":"' . $prompt . '"}]}';
    close $f;
}
PERL

conf() {
    sed -e "s|%UPSTREAM%|$UPSTREAM|g; s|%PORT_A%|$PORT_A|g; s|%PORT_B%|$PORT_B|g" \
        -e "s|%REDIS%|$REDIS|g; s|%TOP%|$top|g; s|%DIR%|$dir|g" \
        -e "s|%STREAM_RATE%|${1:-0}|g; s|%LEASE%|${LEASE:-on}|g" "$here/$2" \
        > "$dir/$2"
}

user=""
[ "$(id -u)" -eq 0 ] && user="user root;"

pids=()
cleanup() {
    for p in upstream a b; do
        [ -f "$dir/logs/$p.pid" ] && kill "$(cat "$dir/logs/$p.pid")" 2>/dev/null || true
    done
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

start_all() {
    conf "$1" upstream.conf
    conf 0 a.conf
    conf 0 b.conf
    for c in upstream a b; do
        "$nginx" -p "$dir/" -c "$dir/$c.conf" -g "$user"
    done
    sleep 0.5
}

stop_nginx() {
    for p in upstream a b; do
        [ -f "$dir/logs/$p.pid" ] && kill -QUIT "$(cat "$dir/logs/$p.pid")" 2>/dev/null || true
    done
    sleep 1
}

redis-server --bind 127.0.0.1 --port $REDIS --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/logs/redis.log" &
pids+=($!)
sleep 0.3
start_all 0

worker() { pgrep -P "$(cat "$dir/logs/$1.pid")" | head -1; }
redis_pid=$(pgrep -f "redis-server 127.0.0.1:$REDIS" | head -1)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
redis_calls() {
    redis-cli -p $REDIS INFO commandstats \
        | awk -F'[=,]' '/^cmdstat_/ { s += $2 } END { print s + 0 }'
}
# ledger round trips: the script calls (every other command is a write
# nobody waits for: index SADD/EXPIRE, the recall poll)
redis_scripts() {
    redis-cli -p $REDIS INFO commandstats \
        | awk -F'[=,]' '/^cmdstat_evalsha:/ { print $2 + 0 }'
}

# one wrk run: prints "rps p50_ms p99_ms cpu_s_per_1k redis_cmds_per_req
# scripts_per_req"
run() {
    local side=$1 body=$2 stream=$3 conns=$4 port w t0 r0 c0 e0 out rps req
    port=$([ "$side" = A ] && echo $PORT_A || echo $PORT_B)
    w=$(worker "$(echo "$side" | tr AB ab)")
    t0=$(( $(ticks "$w") + $(ticks "$redis_pid") ))
    c0=$(redis_calls)
    e0=$(redis_scripts)
    out=$(BODY_FILE="$dir/$body" BENCH_PATH=/v1/chat/completions \
          PACE_MS=${pace:-} \
          wrk -t2 -c"$conns" -d"$DURATION" --latency -s "$here/post.lua" \
              ${stream:+-H "X-Stream: 1"} "http://127.0.0.1:$port")
    req=$(echo "$out" | awk '/requests in/ { print $1 }')
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    t1=$(( $(ticks "$w") + $(ticks "$redis_pid") - t0 ))
    c1=$(( $(redis_calls) - c0 ))
    e1=$(( $(redis_scripts) - e0 ))
    if echo "$out" | grep -q "Non-2xx"; then
        echo "bench: $side answered non-2xx: the run does not count" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$rps $(echo "$out" | awk '$1 == "50%" { print $2 }') \
$(echo "$out" | awk '$1 == "99%" { print $2 }') \
$(awk -v t="$t1" -v n="$req" 'BEGIN { printf "%.3f", t / 100 / n * 1000 }') \
$(awk -v c="$c1" -v n="$req" 'BEGIN { printf "%.2f", c / n }') \
$(awk -v c="$e1" -v n="$req" 'BEGIN { printf "%.3f", c / n }')"
}

ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
       else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
       printf "%.3f", v }'; }

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

results="$dir/results.md"
{
echo "## make bench, $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo
echo "DURATION=$DURATION CONNS=$CONNS ROUNDS=$ROUNDS STREAMS=$STREAMS; wrk -t2, 1 worker per nginx, 1000 users, medians"
echo
} > "$results"

if [ "${ONLY:-}" != streams ]; then
# warm up both sides (caches, Redis scripts, connections)
run A body.json "" "$CONNS" >/dev/null
run B body.json "" "$CONNS" >/dev/null

for kind in json stream; do
    body=body.json stream=""
    [ $kind = stream ] && body=body-stream.json stream=1
    for conns in "$CONNS" 4; do
        : > "$dir/A.$kind.$conns"; : > "$dir/B.$kind.$conns"
        for round in $(seq "$ROUNDS"); do
            order="A B"
            [ $((round % 2)) -eq 0 ] && order="B A"
            for side in $order; do
                run $side $body "$stream" "$conns" >> "$dir/$side.$kind.$conns"
                echo "round $round $kind c=$conns $side: $(tail -1 "$dir/$side.$kind.$conns")" >&2
            done
        done
    done
done

{
echo "| load | side | req/s | p50 ms | p99 ms | CPU s / 1k req (nginx + redis) | redis cmds / req | ledger calls / req |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for kind in json stream; do
    for conns in "$CONNS" 4; do
        for side in A B; do
            f="$dir/$side.$kind.$conns"
            echo "| $kind c=$conns | $side | $(cut -d' ' -f1 "$f" | median) |" \
                 "$(for v in $(cut -d' ' -f2 "$f"); do ms "$v"; echo; done | median) |" \
                 "$(for v in $(cut -d' ' -f3 "$f"); do ms "$v"; echo; done | median) |" \
                 "$(cut -d' ' -f4 "$f" | median) | $(cut -d' ' -f5 "$f" | median) |" \
                 "$(cut -d' ' -f6 "$f" | median) |"
        done
        a=$(cut -d' ' -f1 "$dir/A.$kind.$conns" | median)
        b=$(cut -d' ' -f1 "$dir/B.$kind.$conns" | median)
        echo "| $kind c=$conns | B/A | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }') | | | | | |"
    done
done
echo
} >> "$results"

# latency at about half of A's peak JSON rate, the same paced load on
# both sides: PACE_CONNS connections, each waiting PACE_MS between
# requests
peak=$(cut -d' ' -f1 "$dir/A.json.$CONNS" | median)
PACE_CONNS=${PACE_CONNS:-64}
pace_ms=$(awk -v p="$peak" -v c="$PACE_CONNS" \
          'BEGIN { d = int(c * 1000 / (p / 2) + 0.5); print d < 1 ? 1 : d }')
pace=$pace_ms
for kind in json stream; do
    body=body.json stream=""
    [ $kind = stream ] && body=body-stream.json stream=1
    : > "$dir/A.paced.$kind"; : > "$dir/B.paced.$kind"
    for round in $(seq "$ROUNDS"); do
        for side in A B; do
            run $side $body "$stream" "$PACE_CONNS" >> "$dir/$side.paced.$kind"
            echo "round $round paced $kind $side: $(tail -1 "$dir/$side.paced.$kind")" >&2
        done
    done
done
pace=""
{
echo "Paced: $PACE_CONNS connections, each waiting $pace_ms ms between requests (about half of A's JSON peak, $peak req/s)"
echo
echo "| paced load | side | req/s | p50 ms | p99 ms | p99 added ms |"
echo "| --- | --- | --- | --- | --- | --- |"
for kind in json stream; do
    a99=$(for v in $(cut -d' ' -f3 "$dir/A.paced.$kind"); do ms "$v"; echo; done | median)
    for side in A B; do
        f="$dir/$side.paced.$kind"
        p99=$(for v in $(cut -d' ' -f3 "$f"); do ms "$v"; echo; done | median)
        echo "| $kind | $side | $(cut -d' ' -f1 "$f" | median) |" \
             "$(for v in $(cut -d' ' -f2 "$f"); do ms "$v"; echo; done | median) |" \
             "$p99 | $([ $side = B ] && awk -v a="$a99" -v b="$p99" 'BEGIN { printf "%.3f", b - a }') |"
    done
done
echo
} >> "$results"
fi

if [ "${ONLY:-}" != load ]; then
# streams held open: memory per stream with and without tokenguard
stop_nginx
start_all 200          # the provider trickles each stream out slowly

rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

for side in A B; do
    port=$([ $side = A ] && echo $PORT_A || echo $PORT_B)
    w=$(worker "$(echo $side | tr AB ab)")
    before=$(rss "$w")
    perl "$here/hold_streams.pl" "$port" "$STREAMS" "$dir/body-stream.json" 8 &
    holder=$!
    sleep 6
    after=$(rss "$w")
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    echo "$side $before $after" >> "$dir/rss"
    sleep 2
done

{
echo "| $STREAMS streams held open | worker RSS before (KiB) | during (KiB) | per stream (bytes) |"
echo "| --- | --- | --- | --- |"
while read -r side before after; do
    echo "| $side | $before | $after | $(( (after - before) * 1024 / STREAMS )) |"
done < "$dir/rss"
a=$(awk '$1 == "A" { print $3 - $2 }' "$dir/rss")
b=$(awk '$1 == "B" { print $3 - $2 }' "$dir/rss")
echo
echo "tokenguard adds $(( (b - a) * 1024 / STREAMS )) bytes per stream."
} >> "$results"
fi

cat "$results"
