#!/usr/bin/env bash
# Builds build/ngx_http_tokenguard_module.so with nginx's own build system:
# against the Debian nginx (nginx-dev ships its configure script and the
# flags it was built with) or against a source tree given as NGINX_SRC.
# nginx compiles with -Wall -Werror, so warnings in our files are errors.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
mkdir -p "$build"

cc_opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security"
cc_opt="$cc_opt -Wextra -Wno-unused-parameter -Wno-sign-compare"
cc_opt="$cc_opt -fPIC -D_FORTIFY_SOURCE=2 ${TG_CC_OPT:-}"

if [ -n "${NGINX_SRC:-}" ]; then
    src=$(cd "$NGINX_SRC" && pwd)
    # a source tree builds its own nginx binary too (build/nginx-bin)
    flags=(${NGINX_CONFIGURE_FLAGS:---with-compat --with-debug --with-threads \
           --with-pcre-jit --with-http_ssl_module --with-http_v2_module \
           --with-http_realip_module --with-http_auth_request_module \
           --with-http_stub_status_module})
    target="build modules"
else
    if [ ! -f /usr/share/nginx/src/conf_flags ]; then
        echo "$0: error: /usr/share/nginx/src/conf_flags is missing;" \
             "install nginx-dev (apt-get install nginx-dev) or set NGINX_SRC" >&2
        exit 1
    fi
    src="$build/nginx"
    if [ ! -f "$src/configure" ]; then
        rm -rf "$src"
        cp -r /usr/share/nginx/src "$src"
        chmod -R u+w "$src"
    fi
    # shellcheck disable=SC1091
    . /usr/share/nginx/src/conf_flags
    flags=("${NGX_CONF_FLAGS[@]}")
    target="modules"
fi

# configure again whenever the addon script or the flags change
stamp="$src/objs/.tokenguard-configure"
want="$(cat "$top/config") ${flags[*]} $cc_opt"
if [ ! -f "$src/objs/Makefile" ] || [ ! -f "$stamp" ] \
   || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$src" && ./configure "${flags[@]}" --with-cc-opt="$cc_opt" \
        --add-dynamic-module="$top") > "$build/configure.log" 2>&1 || {
        grep -E "error|not found" "$build/configure.log" | tail -5 >&2
        echo "$0: nginx configure failed, see $build/configure.log" >&2
        exit 1
    }
    echo "$want" > "$stamp"
fi

# shellcheck disable=SC2086
make -s -C "$src" -f objs/Makefile $target -j"$(nproc)"

cp "$src/objs/ngx_http_tokenguard_module.so" "$build/"
if [ -n "${NGINX_SRC:-}" ]; then
    cp "$src/objs/nginx" "$build/nginx-bin"
fi
echo "built $build/ngx_http_tokenguard_module.so"
