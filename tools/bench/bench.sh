#!/usr/bin/env bash
# make bench: a plain nginx proxy (A) against nginx + tokenguard with
# every feature on, twice: with the shipped defaults (B, no tuning
# directive: budget leases) and with the per-request ledger (O,
# tokenguard_lease off); optionally a peer
# gateway (P, PEERS=portkey) on the agentic loads.  Same canned provider,
# same loads, the sides alternating within each round so that machine
# drift hits all; medians of ROUNDS runs.  Writes build/bench/results.md
# (pasted into BENCHMARKS.md by hand).
#
#   DURATION=10s CONNS=32 ROUNDS=3 STREAMS=2000 tools/bench/bench.sh
#   ONLY=chat|agentic|paced|syscalls|streams|core  one part (a list:
#                   ONLY="chat paced"); syscalls: system calls per request
#                   of each worker (strace -c, a short untimed run)
#   SIDES="A B O"   which sides (A is needed for the ratios)
#   PACE_SHARE=0.5  the paced loads' rate, a share of A's chat JSON peak
#   WARM=2s         each measured run follows an unmeasured one of the same
#                   load on the same side, so that every side is measured
#                   as it runs steadily (0: none; then a side idle while
#                   the others ran starts with its slices given back)
#   PEERS=portkey   Portkey's gateway on the agentic loads (npm ci, pinned)
#   PROFILE=1       perf record -g of B's and O's workers on the agentic
#                   loads, the top of perf report in results.md
#   HOLD=1          start the sides and wait (for perf or wrk by hand;
#                   the loads are in build/bench), stop them on ^C
#   CLUSTER=1       B and O against a Redis Cluster on loopback (three
#                   masters, three replicas) instead of one Redis: side B
#                   once (SIDES="B O", ONLY=chat, ROUNDS=1 by default); redis
#                   cmds and ledger calls per request are summed over every
#                   node (ledger calls: the round trips a request waits for)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/tools/bench"
dir="$top/build/bench"
nginx=${TG_NGINX_BIN:-/usr/sbin/nginx}

DURATION=${DURATION:-10s}
WARM=${WARM:-2s}
CONNS=${CONNS:-32}
[ -n "${CLUSTER:-}" ] || ROUNDS=${ROUNDS:-3}
STREAMS=${STREAMS:-2000}
CLUSTER=${CLUSTER:-}
if [ -n "$CLUSTER" ]; then
    SIDES=${SIDES:-B O}
    ONLY=${ONLY:-chat}
    ROUNDS=${ROUNDS:-1}
fi
SIDES=${SIDES:-A B O}
ONLY=${ONLY:-chat agentic paced syscalls streams core}
PEERS=${PEERS:-}
PROFILE=${PROFILE:-}
UPSTREAM=18801 PORT_A=18802 PORT_B=18803 REDIS=18804 PORT_O=18805
PORT_P=18806

only() { [[ " $ONLY " == *" $1 "* ]]; }
has_side() { [[ " $SIDES " == *" $1 "* ]]; }

command -v wrk >/dev/null || TG_EXTRA_PKGS=wrk "$top/tools/install-deps.sh"
if only syscalls; then
    command -v strace >/dev/null || TG_EXTRA_PKGS=strace "$top/tools/install-deps.sh"
fi
[ -f "$top/build/ngx_http_tokenguard_module.so" ] || make -C "$top" module

rm -rf "$dir"
mkdir -p "$dir/logs" "$dir/temp" "$dir/canned"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [[ " $PEERS " == *" portkey "* ]]; then
    SIDES="$SIDES P"
    (cd "$here/peers/portkey" && npm ci --no-audit --no-fund --loglevel=error)
fi

# the 300-byte chat load: the canned answers and the request bodies
perl - "$dir" <<'PERL'
my $d = shift;
my $usage = '"usage":{"prompt_tokens":412,"completion_tokens":96,'
          . '"total_tokens":508,"prompt_tokens_details":{"cached_tokens":0}}';
open my $f, '>', "$d/canned/chat.json" or die;
print $f '{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
       . '"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop",'
       . '"message":{"role":"assistant","content":"' . ('benchmark answer ' x 20)
       . '"}}],' . $usage . '}';
close $f;
open $f, '>', "$d/canned/chat.sse" or die;
for my $i (1 .. 100) {
    print $f 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",'
           . '"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":'
           . "\"token$i \"}}]}\n\n";
}
print $f 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",'
       . '"model":"gpt-4o-mini","choices":[],' . $usage . "}\n\ndata: [DONE]\n\n";
close $f;
my $prompt = 'Please review these design notes and list the risks.' x 4;
for my $s (0, 1) {
    open $f, '>', "$d/chat" . ($s ? '-stream' : '') . '.json' or die;
    print $f '{"model":"gpt-4o",' . ($s ? '"stream":true,' : '')
           . '"messages":[{"role":"system","content":"You are a careful'
           . ' reviewer."},{"role":"user","content":"' . $prompt . '"}]}';
    close $f;
}
PERL
# the agentic loads: one 60 KB conversation per dialect, and its answers
perl "$here/agentic.pl" "$dir" > "$dir/agentic.sizes"

# dialect -> URI path (the stream kind of Gemini is its own method)
path_of() {
    case $1 in
    chat) echo /v1/chat/completions ;;
    responses) echo /v1/responses ;;
    messages) echo /v1/messages ;;
    gemini) [ "$2" = stream ] \
        && echo "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" \
        || echo /v1beta/models/gemini-2.5-flash:generateContent ;;
    esac
}

# what Portkey needs to reach the canned provider in each dialect
peer_headers() {
    local h="x-portkey-custom-host: http://127.0.0.1:$UPSTREAM"
    case $1 in
    chat|responses) echo "x-portkey-provider: openai|$h/v1|Authorization: Bearer bench" ;;
    messages) echo "x-portkey-provider: anthropic|$h/v1|x-api-key: bench|anthropic-version: 2023-06-01" ;;
    gemini) echo "x-portkey-provider: google|$h/v1beta|x-goog-api-key: bench" ;;
    esac
}

conf() {   # conf STREAM_RATE TEMPLATE OUT [NAME PORT TUNING]
    sed -e "s|%UPSTREAM%|$UPSTREAM|g; s|%PORT_A%|$PORT_A|g" \
        -e "s|%REDIS%|$REDIS|g; s|%TOP%|$top|g; s|%DIR%|$dir|g" \
        -e "s|%STREAM_RATE%|$1|g; s|%NAME%|${4:-}|g; s|%PORT%|${5:-}|g" \
        -e "s|%TUNING%|${6:-}|g" "$here/$2" > "$dir/$3"
}

user=""
[ "$(id -u)" -eq 0 ] && user="user root;"

pids=()
cleanup() {
    for p in upstream a b o; do
        [ -f "$dir/logs/$p.pid" ] && kill "$(cat "$dir/logs/$p.pid")" 2>/dev/null || true
    done
    [ -f "$dir/logs/p.pid" ] && kill "$(cat "$dir/logs/p.pid")" 2>/dev/null || true
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

start_all() {
    conf "$1" upstream.conf upstream.conf
    conf 0 a.conf a.conf
    conf 0 b.conf b.conf b "$PORT_B" ""
    conf 0 b.conf o.conf o "$PORT_O" "tokenguard_lease off;"
    if [ -n "$CLUSTER" ]; then
        sed -i "s|tokenguard_redis 127.0.0.1:$REDIS;|tokenguard_redis $(
            for p in $CLUSTER_PORTS; do printf '127.0.0.1:%s ' "$p"; done
            )cluster;|" "$dir/b.conf" "$dir/o.conf"
    fi
    for c in upstream a b o; do
        "$nginx" -p "$dir/" -c "$dir/$c.conf" -g "$user"
    done
    if has_side P && [ ! -f "$dir/logs/p.pid" ]; then
        # production: no console UI; --headless: no log stream
        NODE_ENV=production node \
            "$here/peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" \
            --port=$PORT_P --headless > "$dir/logs/portkey.log" 2>&1 &
        echo $! > "$dir/logs/p.pid"
        for _ in $(seq 50); do
            curl -s -o /dev/null "http://127.0.0.1:$PORT_P/" && break
            sleep 0.2
        done
    fi
    sleep 0.5
}

stop_nginx() {
    for p in upstream a b o; do
        [ -f "$dir/logs/$p.pid" ] && kill -QUIT "$(cat "$dir/logs/$p.pid")" 2>/dev/null || true
    done
    sleep 1
}

if [ -n "$CLUSTER" ]; then
    # six nodes on 18810-18815 (their cluster bus on port + 10000)
    CLUSTER_PORTS="18810 18811 18812 18813 18814 18815"
    for p in $CLUSTER_PORTS; do
        mkdir -p "$dir/redis-$p"
        redis-server --bind 127.0.0.1 --port "$p" --save '' \
            --appendonly no --dir "$dir/redis-$p" \
            --logfile "$dir/logs/redis-$p.log" --cluster-enabled yes \
            --cluster-config-file "$dir/redis-$p/nodes.conf" &
        pids+=($!)
    done
    sleep 0.5
    redis-cli --cluster create $(for p in $CLUSTER_PORTS; do
        printf '127.0.0.1:%s ' "$p"; done) --cluster-replicas 1 \
        --cluster-yes > "$dir/logs/cluster-create.log"
    for _ in $(seq 100); do
        ok=1
        for p in $CLUSTER_PORTS; do
            redis-cli -p "$p" CLUSTER INFO | grep -q cluster_state:ok || ok=
        done
        [ -n "$ok" ] && break
        sleep 0.2
    done
else
    CLUSTER_PORTS=$REDIS
    redis-server --bind 127.0.0.1 --port $REDIS --save '' --appendonly no \
        --dir "$dir" --logfile "$dir/logs/redis.log" &
    pids+=($!)
    sleep 0.3
fi
start_all 0

port_of() {
    case $1 in A) echo $PORT_A ;; B) echo $PORT_B ;; O) echo $PORT_O ;;
    P) echo $PORT_P ;; esac
}
label() {
    case $1 in A) echo "A nginx" ;; B) echo "B defaults" ;; O) echo "O lease off" ;;
    P) echo "P portkey" ;; esac
}
# the process whose CPU is the side's: nginx's one worker, or node
worker() {
    if [ "$1" = P ]; then cat "$dir/logs/p.pid"; return; fi
    pgrep -P "$(cat "$dir/logs/$(echo "$1" | tr ABO abo).pid")" | head -1
}
redis_pids=$(for p in $CLUSTER_PORTS; do
    pgrep -f "redis-server 127.0.0.1:$p" | head -1; done)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
redis_ticks() {
    local p s=0
    for p in $redis_pids; do s=$(( s + $(ticks "$p") )); done
    echo $s
}
# the masters' commands but the cluster's own (CLUSTER SLOTS, INFO); a
# replica's copies are not round trips of nginx's
redis_stats() {
    local p
    for p in $CLUSTER_PORTS; do
        redis-cli -p "$p" INFO replication | grep -q role:master \
            && redis-cli -p "$p" INFO commandstats
    done
}
redis_calls() {
    redis_stats | awk -F'[=,]' '/^cmdstat_/ && !/^cmdstat_(cluster|info)/ {
        s += $2 } END { print s + 0 }'
}
# ledger round trips: the script calls (every other command is a write
# nobody waits for: index SADD/EXPIRE, the recall poll)
redis_scripts() {
    redis_stats | awk -F'[=,]' '/^cmdstat_evalsha:/ { s += $2 }
        END { print s + 0 }'
}

# one wrk run: run SIDE BODY PATH STREAM CONNS [RATE] prints "rps p50_ms
# p99_ms cpu_s_per_1k redis_cmds_per_req scripts_per_req"
run() {
    local side=$1 body=$2 path=$3 stream=$4 conns=$5 rate=${6:-}
    local port w t0 c0 e0 t1 c1 e1 out rps req hdrs=""
    port=$(port_of "$side")
    w=$(worker "$side")
    [ "$side" = P ] && hdrs=$(peer_headers "$(echo "$body" \
        | sed -e 's/^agentic-//' -e 's/-stream//' -e 's/\.json$//')")
    t0=$(( $(ticks "$w") + $(redis_ticks) ))
    c0=$(redis_calls)
    e0=$(redis_scripts)
    out=$(BODY_FILE="$dir/$body" BENCH_PATH="$path" BENCH_HEADERS="$hdrs" \
          RATE=$rate THREADS=2 \
          wrk -t2 -c"$conns" -d"$DURATION" --latency -s "$here/post.lua" \
              ${stream:+-H "X-Stream: 1"} "http://127.0.0.1:$port")
    req=$(echo "$out" | awk '/requests in/ { print $1 }')
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    t1=$(( $(ticks "$w") + $(redis_ticks) - t0 ))
    c1=$(( $(redis_calls) - c0 ))
    e1=$(( $(redis_scripts) - e0 ))
    if echo "$out" | grep -q "Non-2xx" || [ "${req:-0}" -eq 0 ]; then
        echo "bench: $(label "$side") answered non-2xx on $body: the run" \
             "does not count" >&2
        echo "$out" >&2
        # one request, to show what the side answers
        local -a hargs=()
        IFS='|' read -ra hs <<< "$hdrs"
        for h in "${hs[@]}"; do hargs+=(-H "$h"); done
        curl -s -X POST -H "Content-Type: application/json" -H "X-User: u1" \
            ${stream:+-H "X-Stream: 1"} "${hargs[@]}" \
            --data-binary "@$dir/$body" "http://127.0.0.1:$port$path" \
            | head -c 600 >&2 || true
        echo >&2
        return 1
    fi
    echo "$rps $(echo "$out" | awk '$1 == "50%" { print $2 }') \
$(echo "$out" | awk '$1 == "99%" { print $2 }') \
$(awk -v t="$t1" -v n="$req" 'BEGIN { printf "%.3f", t / 100 / n * 1000 }') \
$(awk -v c="$c1" -v n="$req" 'BEGIN { printf "%.2f", c / n }') \
$(awk -v c="$e1" -v n="$req" 'BEGIN { printf "%.3f", c / n }')"
}

if [ -n "${HOLD:-}" ]; then
    echo "bench: holding: A on $PORT_A, B on $PORT_B, O on $PORT_O," \
         "workers A $(worker A) B $(worker B) O $(worker O); ^C stops" >&2
    trap 'kill $! 2>/dev/null; exit 0' INT TERM  # cleanup() runs on exit
    while :; do sleep 3600 & wait $!; done
fi

ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
       else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
       printf "%.3f", v }'; }

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { cut -d' ' -f"$2" "$1" | median; }
col_ms() { for v in $(cut -d' ' -f"$2" "$1"); do ms "$v"; echo; done | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }

# one load, ROUNDS rounds, the sides' order turning each round:
# load NAME BODY PATH STREAM CONNS SIDES... (results in $dir/SIDE.NAME)
load() {
    local name=$1 body=$2 path=$3 stream=$4 conns=$5 round side order
    shift 5
    for side in "$@"; do : > "$dir/$side.$name"; done
    for round in $(seq "$ROUNDS"); do
        order="$*"
        [ $((round % 2)) -eq 0 ] && order=$(echo "$*" | tr ' ' '\n' | tac | tr '\n' ' ')
        for side in $order; do
            if [ "$WARM" != 0 ]; then
                DURATION=$WARM run "$side" "$body" "$path" "$stream" \
                    "$conns" "${rate:-}" > /dev/null 2>&1 || true
            fi
            run "$side" "$body" "$path" "$stream" "$conns" "${rate:-}" \
                >> "$dir/$side.$name" || { : > "$dir/$side.$name.failed"; continue; }
            echo "round $round $name $(label "$side"): $(tail -1 "$dir/$side.$name")" >&2
        done
    done
}

# table rows of a load: every side, then B/A and O/A
rows() {
    local name=$1 what=$2 f side a
    for side in $SIDES; do
        f="$dir/$side.$name"
        [ -s "$f" ] || { [ -f "$f" ] && echo "| $what | $(label "$side") | failed | | | | | |"; continue; }
        echo "| $what | $(label "$side") | $(col "$f" 1) | $(col_ms "$f" 2) |" \
             "$(col_ms "$f" 3) | $(col "$f" 4) | $(col "$f" 5) | $(col "$f" 6) |"
    done
    [ -s "$dir/A.$name" ] || return 0
    a=$(col "$dir/A.$name" 1)
    for side in $SIDES; do
        [ "$side" != A ] && [ -s "$dir/$side.$name" ] || continue
        echo "| $what | $(label "$side") / A | $(ratio "$a" "$(col "$dir/$side.$name" 1)") | | | | | |"
    done
}

head_row() {
    echo "| load | side | req/s | p50 ms | p99 ms | CPU s / 1k req (side + redis) | redis cmds / req | ledger calls / req |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
}

nginx_sides=$(echo "$SIDES" | tr ' ' '\n' | grep -v '^P$' | tr '\n' ' ')

results="$dir/results.md"
{
echo "## make bench, $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo
echo "Machine: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "DURATION=$DURATION CONNS=$CONNS ROUNDS=$ROUNDS STREAMS=$STREAMS SIDES=\"$SIDES\" WARM=$WARM; wrk -t2, 1 worker per nginx, 1000 users, medians; each measured run right after an unmeasured one of WARM on the same side."
echo "A: plain nginx proxy; B defaults: tokenguard, every feature on, no tuning directive (budget leases); O lease off: the same with tokenguard_lease off (a Redis round trip per step)${PEERS:+; P: $PEERS}."
echo
} > "$results"

# warm up every side (caches, Redis scripts, leases, connections)
for side in $nginx_sides; do
    run "$side" chat.json /v1/chat/completions "" "$CONNS" >/dev/null || true
done

if only chat; then
    for kind in json stream; do
        body=chat.json stream=""
        [ $kind = stream ] && body=chat-stream.json stream=1
        for conns in "$CONNS" 4; do
            # shellcheck disable=SC2086
            load "chat-$kind-$conns" $body /v1/chat/completions "$stream" \
                "$conns" $nginx_sides
        done
    done
    {
    echo "300-byte chat (OpenAI chat completions, the 100-token answer as JSON or a 100-chunk stream)"
    echo
    head_row
    for kind in json stream; do
        for conns in "$CONNS" 4; do rows "chat-$kind-$conns" "chat $kind c=$conns"; done
    done
    echo
    } >> "$results"
fi

agentic_load() {   # agentic_load DIALECT KIND SIDES...
    local d=$1 kind=$2 body stream=""
    shift 2
    body=agentic-$d.json
    [ "$kind" = stream ] && body=agentic-$d-stream.json stream=1
    load "agentic-$d-$kind" "$body" "$(path_of "$d" "$kind")" "$stream" \
        "$CONNS" "$@"
}

if only agentic; then
    # Portkey 1.15.2 has no native generateContent route, and its /v1/*
    # proxy fails on Node 20 ("TypeError: immutable" setting headers of
    # the upstream's response): no Gemini row for P
    if has_side P; then
        for d in chat responses messages; do
            run P "agentic-$d.json" "$(path_of "$d" json)" "" 4 >/dev/null \
                || echo "bench: portkey fails on $d" >&2
        done
    fi
    for d in chat responses messages gemini; do
        sides=$SIDES
        [ $d = gemini ] && sides=$nginx_sides
        # shellcheck disable=SC2086
        agentic_load "$d" json $sides
        # shellcheck disable=SC2086
        agentic_load "$d" stream $nginx_sides
    done
    {
    echo "Agentic bodies (one 60 KB conversation per dialect: system prompt, 20 tools, 31 turns; c=$CONNS):"
    echo
    sed 's/^/    /' "$dir/agentic.sizes"
    echo
    head_row
    for d in chat responses messages gemini; do
        rows "agentic-$d-json" "agentic $d json"
        rows "agentic-$d-stream" "agentic $d stream"
    done
    echo
    has_side P && echo "P (Portkey) runs the JSON loads of chat, responses and messages: it has no native Gemini route that works on Node 20 (its /v1/* proxy throws \"TypeError: immutable\"); its Redis columns are the other sides' background work." && echo
    } >> "$results"
fi

# latency at half of A's peak chat JSON rate, the same offered rate on
# every side: RATE requests a second on PACE_CONNS connections (post.lua)
if only paced; then
    if [ -s "$dir/A.chat-json-$CONNS" ]; then
        peak=$(col "$dir/A.chat-json-$CONNS" 1)
    else
        run A chat.json /v1/chat/completions "" "$CONNS" > "$dir/A.peak"
        peak=$(col "$dir/A.peak" 1)
    fi
    PACE_CONNS=${PACE_CONNS:-64}
    PACE_SHARE=${PACE_SHARE:-0.5}
    rate=$(awk -v p="$peak" -v s="$PACE_SHARE" 'BEGIN { printf "%d", p * s }')
    offered=$rate
    for kind in json stream; do
        body=chat.json stream=""
        [ $kind = stream ] && body=chat-stream.json stream=1
        # shellcheck disable=SC2086
        load "paced-$kind" $body /v1/chat/completions "$stream" "$PACE_CONNS" \
            $nginx_sides
    done
    rate=""
    {
    echo "Paced: $offered req/s offered ($PACE_SHARE of A's chat JSON peak, $peak req/s) on $PACE_CONNS connections, a fixed schedule (post.lua RATE)"
    echo
    echo "| paced chat | side | req/s | p50 ms | p99 ms | p99 added ms | kept up |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for kind in json stream; do
        a99=$(col_ms "$dir/A.paced-$kind" 3)
        for side in $nginx_sides; do
            f="$dir/$side.paced-$kind"
            [ -s "$f" ] || continue
            p99=$(col_ms "$f" 3)
            echo "| $kind | $(label "$side") | $(col "$f" 1) | $(col_ms "$f" 2) |" \
                 "$p99 | $([ "$side" != A ] && awk -v a="$a99" -v b="$p99" 'BEGIN { printf "%.3f", b - a }') |" \
                 "$(awk -v r="$(col "$f" 1)" -v o="$offered" 'BEGIN { print ((r >= 0.95 * o) ? "yes" : "no: saturated") }') |"
        done
    done
    echo
    } >> "$results"
fi

# system calls per request of each side's worker on the chat JSON load:
# one short run under strace -c (slower, so not one of the timed runs)
if only syscalls; then
    : > "$dir/syscalls"
    for side in $nginx_sides; do
        w=$(worker "$side")
        strace -c -f -p "$w" -o "$dir/strace.$side" 2>/dev/null &
        tracer=$!
        sleep 0.5
        n=$(BODY_FILE="$dir/chat.json" BENCH_PATH=/v1/chat/completions \
            THREADS=2 wrk -t2 -c"$CONNS" -d3s -s "$here/post.lua" \
                "http://127.0.0.1:$(port_of "$side")" \
            | awk '/requests in/ { print $1 }')
        kill -INT "$tracer"
        wait "$tracer" 2>/dev/null || true
        [ "${n:-0}" -gt 0 ] || { echo "bench: no requests under strace on $side" >&2; continue; }
        awk -v s="$side" -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ \
            && $NF != "total" { printf "%s %s %.3f\n", s, $NF, $4 / n }' \
            "$dir/strace.$side" >> "$dir/syscalls"
    done
    {
    echo "System calls per request of the side's worker, chat JSON c=$CONNS (one 3 s run under \`strace -c -f\`, which slows it; counts, not times):"
    echo
    echo "| system call | $(for side in $nginx_sides; do printf '%s | ' "$(label "$side")"; done)"
    echo "| --- | $(for _ in $nginx_sides; do printf -- '--- | '; done)"
    for call in $(awk '{ print $2 }' "$dir/syscalls" | sort -u); do
        echo "| $call | $(for side in $nginx_sides; do
            printf '%s | ' "$(awk -v s="$side" -v c="$call" '$1 == s && $2 == c { print $3 }' "$dir/syscalls")"; done)"
    done
    echo
    } >> "$results"
fi

# PROFILE=1: where B's and O's workers spend the agentic loads
if [ -n "$PROFILE" ]; then
    for side in B O; do
        has_side $side || continue
        w=$(worker $side)
        perf record -F 999 -g -o "$dir/perf-$side.data" -p "$w" \
            2> "$dir/perf-$side.log" &
        perfpid=$!
        sleep 0.5
        for d in chat responses messages gemini; do
            run $side "agentic-$d.json" "$(path_of "$d" json)" "" "$CONNS" \
                >> "$dir/$side.profiled"
        done
        kill -INT "$perfpid"
        wait "$perfpid" || true
        perf report -i "$dir/perf-$side.data" --no-children --stdio \
            -g none --fields overhead,dso,sym 2>/dev/null \
            | grep -v '^#' | grep -v '^$' > "$dir/perf-$side.all"
        grep -v '^ *0\.[0-6][0-9]%' "$dir/perf-$side.all" | head -30 \
            > "$dir/perf-$side.top"
    done
    {
    for side in B O; do
        [ -s "$dir/perf-$side.top" ] || continue
        echo "Profile of $(label $side)'s worker on the four agentic JSON loads ($(awk '{ print $1 }' "$dir/$side.profiled" | paste -sd' ') req/s): \`perf record -F 999 -g\`, \`perf report --no-children\`, self time by part, then the top symbols (over 0.7%):"
        echo
        echo "| part | self time |"
        echo "| --- | --- |"
        # the module's core/ parsers are tg_*, its glue ngx_http_tokenguard_*
        awk '{ p = $1; sub(/%/, "", p); d = $2; y = $4
               if ($3 == "[k]") k = "kernel"
               else if (d ~ /tokenguard/ && y ~ /^tg_/) k = "core/ (tg_*)"
               else if (d ~ /tokenguard/) k = "glue (ngx_http_tokenguard_*)"
               else if (d ~ /^libc/) k = "libc (memmove, malloc, printf)"
               else if (d ~ /pcre2/) k = "PCRE2"
               else if (d ~ /nginx/) k = "nginx"
               else if (d ~ /hiredis/) k = "hiredis"
               else k = "other (" d ")"
               s[k] += p }
             END { for (k in s) printf "| %s | %.1f%% |\n", k, s[k] }' \
            "$dir/perf-$side.all" | sort -t'|' -k3 -g -r
        echo
        echo '```'
        cat "$dir/perf-$side.top"
        echo '```'
        echo
    done
    } >> "$results"
fi

if only streams; then
    # streams held open: memory per stream with and without tokenguard
    stop_nginx
    start_all 200          # the provider trickles each stream out slowly

    rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

    : > "$dir/rss"
    for side in $nginx_sides; do
        w=$(worker $side)
        before=$(rss "$w")
        perl "$here/hold_streams.pl" "$(port_of $side)" "$STREAMS" \
            "$dir/chat-stream.json" 120 > "$dir/hold.$side" &
        holder=$!
        for _ in $(seq 600); do
            grep -q '^up' "$dir/hold.$side" && break
            kill -0 $holder 2>/dev/null || break
            sleep 0.1
        done
        sleep 0.5
        after=$(rss "$w")
        up=$(awk '/^up/ { print $2 }' "$dir/hold.$side")
        kill "$holder" 2>/dev/null || true
        wait "$holder" 2>/dev/null || true
        echo "$side $before $after ${up:-0} $(head -1 "$dir/hold.$side" | tr ' ' _)" >> "$dir/rss"
        sleep 2
    done

    {
    echo "| $STREAMS streams held open | worker RSS before (KiB) | during (KiB) | streams up | per stream (bytes) | over A (bytes) |"
    echo "| --- | --- | --- | --- | --- | --- |"
    a=$(awk '$1 == "A" && $4 > 0 { printf "%d", ($3 - $2) * 1024 / $4 }' "$dir/rss")
    while read -r side before after up _; do
        per=$([ "$up" -gt 0 ] && echo $(( (after - before) * 1024 / up )) || echo -)
        echo "| $(label "$side") | $before | $after | $up | $per |" \
             "$([ "$side" != A ] && [ -n "$a" ] && [ "$per" != - ] && echo $((per - a))) |"
    done < "$dir/rss"
    echo
    awk -v n="$STREAMS" '$4 != n { print "warning: " $1 ": " $4 " of " n " streams were up (" $5 ")" }' "$dir/rss"
    echo
    } >> "$results"
fi

if only core; then
    make -s -C "$top" bench-core-build
    "$top/build/bench_core" "$dir" >> "$results"
fi

cat "$results"
