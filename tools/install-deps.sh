#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing need,
# only those that are missing.  Needs root (or sudo) when something is.
set -euo pipefail

# libssl-dev: tokenguardctl's TLS (nginx-dev brings it too); openssl: the
# TLS tests make their certificates with it
pkgs=(gcc make perl nginx nginx-dev libhiredis-dev libjansson-dev
      libpcre2-dev libssl-dev openssl redis-server redis-tools pkg-config
      ${TG_EXTRA_PKGS:-})

# node and npm run the official SDKs in t/clients.t; Debian's if none
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# the packages' own services are not wanted: we start our own on free ports
printf '#!/bin/sh\nexit 101\n' > /tmp/tg-policy-rc.d 2>/dev/null || true
if [ -z "$sudo" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    install -m 755 /tmp/tg-policy-rc.d /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
