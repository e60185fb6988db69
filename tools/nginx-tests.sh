#!/usr/bin/env bash
# Runs nginx's own proxy tests (a checkout of github.com/nginx/nginx-tests)
# against the nginx the module was built for, with the module loaded and
# "tokenguard off": loading tokenguard must change nothing for traffic it
# does not handle (its filters and phase handlers are in every request).
#
#   tools/nginx-tests.sh [--baseline] /path/to/nginx-tests [TEST.t ...]
#
# --baseline runs the same tests without the module, to tell a failure
# of the module's from one of nginx's own (a newer nginx-tests checkout
# has tests that nginx 1.22 fails, module or not).
#
# Without TEST.t names it runs every proxy*.t that keeps to 127.0.0.1
# (not the few on [::1] or 127.0.0.2).  TEST_NGINX_BINARY picks
# the nginx (default: build/nginx-bin if present, else /usr/sbin/nginx);
# PROVE_ARGS adds prove options (e.g. "-j2", "-v").  Ends with one line of
# counts; exits non-zero if any test failed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

baseline=
if [ "${1:-}" = --baseline ]; then
    baseline=1
    shift
fi

if [ $# -lt 1 ] || [ ! -f "$1/lib/Test/Nginx.pm" ]; then
    echo "usage: $0 [--baseline] /path/to/nginx-tests [TEST.t ...]" >&2
    echo "  (a checkout of https://github.com/nginx/nginx-tests)" >&2
    exit 2
fi

tests=$(cd "$1" && pwd)
shift

module="$top/build/ngx_http_tokenguard_module.so"
if [ ! -f "$module" ]; then
    echo "$0: error: $module is missing; run make first" >&2
    exit 2
fi

if [ -z "${TEST_NGINX_BINARY:-}" ]; then
    if [ -x "$top/build/nginx-bin" ]; then
        TEST_NGINX_BINARY="$top/build/nginx-bin"
    else
        TEST_NGINX_BINARY=/usr/sbin/nginx
    fi
fi

# Test::Nginx loads every module "nginx -V" lists as "=dynamic" from
# TEST_NGINX_MODULES; Debian's nginx lists six whose packages
# (libnginx-mod-*) may not be installed, and then no test can start.  A
# wrapper shows nginx-tests only the dynamic modules that are there, so
# the tests that need the others skip themselves as for any missing
# module.
modules=${TEST_NGINX_MODULES:-/usr/lib/nginx/modules}
real=$TEST_NGINX_BINARY
version=$("$real" -V 2>&1)
shown=$version
while read -r flag; do
    name=${flag#--with-}
    name=${name%=dynamic}
    case $name in
        http_xslt_module) so=ngx_http_xslt_filter_module.so ;;
        mail|stream)      so=ngx_${name}_module.so ;;
        *)                so=ngx_$name.so ;;
    esac
    if [ ! -f "$modules/$so" ]; then
        shown=${shown//" $flag"/}
    fi
done < <(grep -oE -- '--with-[a-z0-9_]+=dynamic' <<< "$version")

if [ "$shown" != "$version" ]; then
    wrap="$top/build/nginx-tests-bin"
    mkdir -p "$wrap"
    # shellcheck disable=SC2016
    {
        echo '#!/bin/sh'
        echo '# written by tools/nginx-tests.sh: "-V" without the dynamic'
        echo '# modules that are not installed, else the real nginx'
        echo 'if [ "$1" = "-V" ]; then'
        echo "    cat >&2 <<'EOF'"
        echo "$shown"
        echo 'EOF'
        echo '    exit 0'
        echo 'fi'
        echo "exec '$real' \"\$@\""
    } > "$wrap/nginx"
    chmod +x "$wrap/nginx"
    TEST_NGINX_BINARY="$wrap/nginx"
    echo "nginx-tests: $real -V lists dynamic modules missing from $modules;" \
         "hidden from the tests (they skip what needs them)"
fi

export TEST_NGINX_BINARY TEST_NGINX_MODULES="$modules"

if [ -n "$baseline" ]; then
    export TEST_NGINX_GLOBALS=""
    unset TEST_NGINX_GLOBALS_HTTP
    module="(baseline: not loaded)"
else
    export TEST_NGINX_GLOBALS="load_module $module;"
    export TEST_NGINX_GLOBALS_HTTP="tokenguard off;"
fi

cd "$tests"

log="$top/build/nginx-tests.log"
mkdir -p "$top/build"
: > "$log"

# by default every proxy*.t that stays on 127.0.0.1: not the ones that
# listen on or bind to [::1] or 127.0.0.2
if [ $# -eq 0 ]; then
    left=()
    for f in proxy*.t; do
        if grep -qE '127\.0\.0\.[02-9]|\[::1\]' "$f"; then
            left+=("$f")
        else
            set -- "$@" "$f"
        fi
    done
    echo "nginx-tests: not run (addresses other than 127.0.0.1): ${left[*]}"
fi

echo "nginx-tests in $tests$(git -C "$tests" rev-parse --short HEAD \
                  2>/dev/null | sed 's/^/ at /'), $("$real" -v 2>&1 \
                  | sed 's/.*version: //'), module $module"

# As root, nginx's workers would run as nobody and could not read the
# tests' files: add "user root;", except to the tests that name their own
# user (proxy_bind_transparent.t), which run in a second prove.
own=()
rest=()
for f in "$@"; do
    if [ "$(id -u)" = 0 ] && grep -q '^user ' "$f"; then
        own+=("$f")
    else
        rest+=("$f")
    fi
done

rc=0
run() {
    echo "TEST_NGINX_GLOBALS=\"$TEST_NGINX_GLOBALS\"" \
         "TEST_NGINX_GLOBALS_HTTP=\"${TEST_NGINX_GLOBALS_HTTP:-}\""
    # shellcheck disable=SC2086
    prove ${PROVE_ARGS:-} "$@" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
}

globals=$TEST_NGINX_GLOBALS
set +e
if [ ${#rest[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        TEST_NGINX_GLOBALS="$globals user root;"
    fi
    run "${rest[@]}"
fi
if [ ${#own[@]} -gt 0 ]; then
    TEST_NGINX_GLOBALS=$globals
    run "${own[@]}"
fi
set -e

# counted from prove's own reports
files=$#
skipped=$(grep -cE '\.t \.+ skipped:' "$log" || true)
ntests=$(awk -F'[=,]' '/^Files=[0-9]+, Tests=[0-9]+,/ { n += $4 }
         END { print n + 0 }' "$log")
failed=$(awk '/^Failed [0-9]+\/[0-9]+ subtests/ { split($2, a, "/");
              n += a[1] } END { print n + 0 }' "$log")
bad=$(grep -cE '^[^ ]+\.t +\(Wstat' "$log" || true)

echo "nginx-tests: $files files ($skipped skipped), $ntests tests," \
     "$failed failed, $bad files with problems; result:" \
     "$([ "$rc" -eq 0 ] && echo PASS || echo FAIL)"

exit "$rc"
