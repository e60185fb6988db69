#!/usr/bin/env bash
# make run: Redis, the stub provider and nginx with conf/ on
# 127.0.0.1:8080, in the foreground; Ctrl-C stops everything.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/build/run"
nginx=${TG_NGINX_BIN:-/usr/sbin/nginx}
redis_port=${TG_REDIS_PORT:-6379}

mkdir -p "$run/logs" "$run/temp"
cp "$top"/conf/*.conf "$top/conf/prices.json" "$run/"
: > "$run/logs/access.log"

pids=()
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "stopping"
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in 8080 9000; do
    if busy $port; then
        echo "make run: port $port is already in use; stop what listens there" >&2
        exit 1
    fi
done

if busy "$redis_port"; then
    echo "redis: using the server already on 127.0.0.1:$redis_port"
else
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' \
        --appendonly no --dir "$run" --logfile "$run/logs/redis.log" &
    pids+=($!)
fi

perl "$top/tools/stub-provider.pl" --listen 127.0.0.1:9000 --delay 40 \
    > "$run/logs/stub.log" 2>&1 &
pids+=($!)

# the first requests must not find the provider still starting
for _ in $(seq 100); do
    busy 9000 && break
    sleep 0.1
done

user=""
[ "$(id -u)" -eq 0 ] && user="user root;"
"$nginx" -p "$run/" -c "$run/nginx.conf" -t -q
"$nginx" -p "$run/" -c "$run/nginx.conf" -g "daemon off; $user" &
pids+=($!)

for _ in $(seq 50); do busy 8080 && break; sleep 0.1; done

cat <<'MSG'

tokenguard is up on http://127.0.0.1:8080 (stub provider on :9000, Redis).
Try:

  # OpenAI chat; "gpt-4o" with a short prompt is routed to gpt-4o-mini
  curl -si http://127.0.0.1:8080/openai/v1/chat/completions \
    -H 'X-TokenGuard-User: alice' -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello!"}]}'

  # the same, streamed (tokenguard asks the provider for usage at the end)
  curl -sN http://127.0.0.1:8080/openai/v1/chat/completions \
    -H 'X-TokenGuard-User: alice' \
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

  # Anthropic, streamed
  curl -sN http://127.0.0.1:8080/anthropic/v1/messages -H 'X-TokenGuard-User: alice' \
    -d '{"model":"claude-sonnet-4-5","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Hi"}]}'

  # Gemini
  curl -s 'http://127.0.0.1:8080/gemini/v1beta/models/gemini-2.5-pro:generateContent' \
    -H 'X-TokenGuard-User: alice' -d '{"contents":[{"parts":[{"text":"Hi"}]}]}'

  # a sandbox experiment, counted apart from the caps
  curl -s http://127.0.0.1:8080/openai/v1/chat/completions -H 'X-TokenGuard-User: alice' \
    -H 'X-TokenGuard-Sandbox: 1' -d '{"model":"o3","messages":[{"role":"user","content":"Try this"}]}'

  # the Prometheus metrics
  curl -s http://127.0.0.1:8080/metrics

  # alice's counters, the top spenders, this month's audit
  build/tokenguardctl usage user alice
  build/tokenguardctl top --watch
  build/tokenguardctl report --html /tmp/audit.html

  # refusals: no identity (401), a model that is not allowed (403),
  # a prompt with a secret (403), over the daily cap (429)
  curl -s http://127.0.0.1:8080/openai/v1/chat/completions -d '{"model":"gpt-4o","messages":[]}'
  curl -s http://127.0.0.1:8080/openai/v1/chat/completions -H 'X-TokenGuard-User: alice' \
    -d '{"model":"o1-pro","messages":[]}'
  curl -s http://127.0.0.1:8080/openai/v1/chat/completions -H 'X-TokenGuard-User: alice' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"AKIAABCDEFGHIJKLMNOP"}]}'
  curl -s http://127.0.0.1:8080/openai/v1/chat/completions -H 'X-TokenGuard-User: alice' \
    -d '{"model":"o1","max_tokens":4000000,"messages":[{"role":"user","content":"Hi"}]}'

Audit log (one JSON line per request) follows. Ctrl-C stops everything.

MSG

tail -n 0 -f "$run/logs/access.log" &
pids+=($!)

wait -n "${pids[@]}"
