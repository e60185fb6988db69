#!/usr/bin/env bash
# Builds nginx itself and the module with AddressSanitizer and UBSan into
# build/asan/: build/asan/nginx-bin and build/asan/ngx_http_tokenguard_module.so
# (an ASan nginx loads only an ASan module and the other way round, so the
# normal build/ is left alone).  -DNGX_DEBUG_PALLOC=1 makes every pool
# allocation a malloc of its own, so that ASan sees pool overruns.
#
# The source is NGINX_SRC=/path if given, else a full tree at
# /usr/share/nginx/src, else the upstream tarball of the Debian nginx
# version (Debian's nginx-dev ships only headers): "apt-get source" with a
# deb-src list of this build's own, its SHA-256 checked against the index.
# The tree is copied to build/asan/nginx and built there.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/build/asan"
src="$out/nginx"
mkdir -p "$out"

san="-fsanitize=address,undefined -fno-omit-frame-pointer"
cc_opt="-g -O1 $san -DNGX_DEBUG_PALLOC=1"
cc_opt="$cc_opt -Wextra -Wno-unused-parameter -Wno-sign-compare ${TG_CC_OPT:-}"
ld_opt="$san"

flags=(${NGINX_CONFIGURE_FLAGS:---with-compat --with-debug --with-threads \
       --with-pcre-jit --with-http_ssl_module --with-http_v2_module \
       --with-http_realip_module --with-http_auth_request_module \
       --with-http_stub_status_module})


# the upstream tarball of the nginx version nginx-dev is for, into $src
fetch_debian_source() {
    local hdr=/usr/share/nginx/src/src/core/nginx.h ver apt opts v tgz sum

    if [ ! -f "$hdr" ]; then
        echo "$0: error: $hdr is missing; install nginx-dev" \
             "(apt-get install nginx-dev) or set NGINX_SRC" >&2
        exit 1
    fi
    ver=$(sed -n 's/^#define NGINX_VERSION *"\(.*\)"/\1/p' "$hdr")
    tgz="nginx_$ver.orig.tar.gz"
    apt="$out/apt"
    mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"

    # the machine's Debian sources, as deb-src
    rm -f "$apt"/parts/*
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        sed 's/^Types:.*/Types: deb-src/' "$f" > "$apt/parts/${f##*/}"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^deb \(.*\)/deb-src \1/p' "$f" > "$apt/parts/${f##*/}"
    done

    opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/parts"
          -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
          -o APT::Sandbox::User=root)

    echo "fetching the nginx $ver source (apt-get source)"
    apt-get "${opts[@]}" update > "$apt/apt.log" 2>&1 || {
        tail -5 "$apt/apt.log" >&2
        echo "$0: error: apt-get update with deb-src failed;" \
             "set NGINX_SRC to an nginx $ver source tree" >&2
        exit 1
    }

    # the orig tarball is shared by every Debian revision of $ver; a
    # mirror may lack one revision's other files, so try each in turn
    sum=$(apt-cache "${opts[@]}" showsrc nginx \
          | awk -v f="$tgz" '$3 == f && length($1) == 64 { print $1; exit }')
    for v in $(apt-cache "${opts[@]}" showsrc nginx \
               | sed -n "s/^Version: \($ver-.*\)/\1/p"); do
        [ -f "$apt/$tgz" ] && break
        (cd "$apt" && apt-get "${opts[@]}" --download-only source "nginx=$v") \
            >> "$apt/apt.log" 2>&1 || true
    done

    if [ -z "$sum" ] || [ ! -f "$apt/$tgz" ] \
       || ! echo "$sum  $apt/$tgz" | sha256sum -c --quiet - >&2; then
        echo "$0: error: could not fetch $tgz, see $apt/apt.log;" \
             "set NGINX_SRC to an nginx $ver source tree" >&2
        exit 1
    fi

    rm -rf "$src" "$out/nginx-$ver"
    tar -xzf "$apt/$tgz" -C "$out"
    mv "$out/nginx-$ver" "$src"
}


origin=${NGINX_SRC:+$(cd "$NGINX_SRC" && pwd)}
if [ "$origin" = "$src" ]; then
    echo "$0: error: NGINX_SRC is $src, where this script builds" >&2
    exit 1
fi
if [ ! -f "$src/src/core/nginx.c" ] \
   || [ "$(cat "$out/nginx.origin" 2>/dev/null)" != "$origin" ]; then
    rm -rf "$src"
    if [ -n "${NGINX_SRC:-}" ]; then
        cp -r "$origin" "$src"
        rm -rf "$src/objs" "$src/Makefile"
    elif [ -f /usr/share/nginx/src/src/core/nginx.c ]; then
        cp -r /usr/share/nginx/src "$src"
    else
        fetch_debian_source
    fi
    chmod -R u+w "$src"
    echo "$origin" > "$out/nginx.origin"
fi

# configure again whenever the addon script or the flags change
stamp="$src/objs/.tokenguard-configure"
want="$(cat "$top/config") ${flags[*]} $cc_opt $ld_opt ${NGINX_SRC:-}"
if [ ! -f "$src/objs/Makefile" ] || [ ! -f "$stamp" ] \
   || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$src" && ./configure "${flags[@]}" --with-cc-opt="$cc_opt" \
        --with-ld-opt="$ld_opt" --add-dynamic-module="$top") \
        > "$out/configure.log" 2>&1 || {
        grep -E "error|not found" "$out/configure.log" | tail -5 >&2
        echo "$0: nginx configure failed, see $out/configure.log" >&2
        exit 1
    }
    echo "$want" > "$stamp"
fi

make -s -C "$src" -f objs/Makefile build modules -j"$(nproc)"

cp "$src/objs/nginx" "$out/nginx-bin"
cp "$src/objs/ngx_http_tokenguard_module.so" "$out/"
echo "built $out/nginx-bin and $out/ngx_http_tokenguard_module.so"
