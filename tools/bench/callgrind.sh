#!/usr/bin/env bash
# Instructions per request of one side's nginx worker on the 300-byte
# chat load, with valgrind's callgrind: counts that do not depend on how
# loaded the machine is (wall clock does, and this VM has no hardware
# counters for "perf stat -e instructions").  The side runs with
# master_process off under callgrind; WARM requests, counters zeroed,
# N requests (USERS users, 1000 by default, in 20 teams, as post.lua,
# over one keepalive connection), counters dumped.  Prints "SIDE
# Ir/request", the ledger calls per request and the top functions (self)
# per request.  Under valgrind a worker serves ~100 requests a second, so
# with 1000 users nearly every request is a user's first in its flush
# interval and makes a lease call; USERS=10 gives about the calls per
# request of the real bench (0.1).  MODULE=path profiles another build.
#
#   USERS=10 tools/bench/callgrind.sh [B|O|A] [N] [WARM]   (B: defaults)
set -euo pipefail

side=${1:-B}
n=${2:-2000}
warm=${3:-300}
top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/tools/bench"
dir="$top/build/callgrind"
nginx=${TG_NGINX_BIN:-/usr/sbin/nginx}
# free loopback ports, so that a make bench or a test beside it is no bother
free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0)->sockport'
}
UPSTREAM=$(free_port) PORT_A=$(free_port) PORT=$(free_port) REDIS=$(free_port)
USERS=${USERS:-1000}

rm -rf "$dir"
mkdir -p "$dir/logs" "$dir/canned"
user=""
[ "$(id -u)" -eq 0 ] && user="user root;"

# the canned answers and the 300-byte body, as bench.sh writes them
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
print $f "data: [DONE]\n\n";
close $f;
my $prompt = 'Please review these design notes and list the risks.' x 4;
open $f, '>', "$d/chat.json" or die;
print $f '{"model":"gpt-4o","messages":[{"role":"system","content":"You'
       . ' are a careful reviewer."},{"role":"user","content":"' . $prompt
       . '"}]}';
close $f;
PERL
touch "$dir/canned/agentic-chat.json" "$dir/canned/agentic-chat.sse"

conf() {   # conf TEMPLATE OUT [NAME PORT TUNING]
    sed -e "s|%UPSTREAM%|$UPSTREAM|g; s|%PORT_A%|$PORT_A|g" \
        -e "s|%REDIS%|$REDIS|g; s|%TOP%|$top|g; s|%DIR%|$dir|g" \
        -e "s|%STREAM_RATE%|0|g; s|%NAME%|${3:-}|g; s|%PORT%|${4:-}|g" \
        -e "s|%TUNING%|${5:-}|g" "$here/$1" > "$dir/$2"
}

conf upstream.conf upstream.conf
module=${MODULE:-$top/build/ngx_http_tokenguard_module.so}
case $side in
A) conf a.conf side.conf; port=$PORT_A ;;
B) conf b.conf side.conf b "$PORT" ""; port=$PORT ;;
O) conf b.conf side.conf o "$PORT" "tokenguard_lease off;"; port=$PORT ;;
*) echo "usage: $0 [A|B|O] [N] [WARM]" >&2; exit 2 ;;
esac
sed -i "s|^load_module .*|load_module $module;|" "$dir/side.conf"

pids=()
cleanup() {
    [ -f "$dir/logs/upstream.pid" ] \
        && kill "$(cat "$dir/logs/upstream.pid")" 2>/dev/null || true
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

redis-server --bind 127.0.0.1 --port $REDIS --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/logs/redis.log" &
pids+=($!)
"$nginx" -p "$dir/" -c "$dir/upstream.conf" -g "$user"
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    --dump-instr=no --collect-atstart=yes \
    "$nginx" -p "$dir/" -c "$dir/side.conf" \
    -g "$user master_process off; daemon off;" \
    > "$dir/logs/valgrind.log" 2>&1 &
vg=$!
pids+=($vg)
for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.2
done

# N requests in one curl (one keepalive connection), users as post.lua's
send() {
    local count=$1 seed=$2 cfg="$dir/curl.cfg"
    perl -e '
        my ($count, $seed, $port, $body, $users) = @ARGV;
        srand($seed);
        for my $i (1 .. $count) {
            my $u = 1 + int(rand($users));
            print "next\n" if $i > 1;
            print "url = \"http://127.0.0.1:$port/v1/chat/completions\"\n",
                  "request = \"POST\"\n",
                  "header = \"Content-Type: application/json\"\n",
                  "header = \"X-User: user$u\"\n",
                  "header = \"X-Team: team", $u % 20, "\"\n",
                  "data-binary = \"\@$body\"\n",
                  "output = \"/dev/null\"\n",
                  "write-out = \"%{http_code}\\\\n\"\n";
        }' "$count" "$seed" "$port" "$dir/chat.json" "$USERS" > "$cfg"
    curl -s -K "$cfg" | sort | uniq -c
}

evalsha() {
    redis-cli -p $REDIS INFO commandstats \
        | awk -F'[=,]' '/^cmdstat_evalsha:/ { print $2 + 0 }'
}

send "$warm" 1 > "$dir/warm.codes"
callgrind_control -z "$vg" > /dev/null 2>&1
e0=$(evalsha)
send "$n" 42 | tee "$dir/codes"
e1=$(evalsha)
callgrind_control -d "$vg" > /dev/null 2>&1
sleep 1

out=$(ls -t "$dir"/callgrind.out* | head -1)
total=$(callgrind_annotate "$out" 2>/dev/null \
        | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
echo "$side $(awk -v t="$total" -v n="$n" 'BEGIN { printf "%d", t / n }')" \
     "Ir/request, $(awk -v e="$((e1 - e0))" -v n="$n" \
                     'BEGIN { printf "%.3f", e / n }') ledger calls/request" \
     "($n requests, USERS=$USERS, $out)"
callgrind_annotate --inclusive=no --threshold=100 "$out" 2>/dev/null \
    | sed -n '/file:function/,$p' | grep -v 'main\|libc_start\|0x0000' \
    | sed -n '3,27p' | awk -v n="$n" '{ v = $1; gsub(",", "", v);
        $1 = ""; $2 = ""; printf "%9d %s\n", v / n, $0 }'
