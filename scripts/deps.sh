#!/usr/bin/env bash
# Installs the Debian packages pg_prepaid needs to build, test and run, when any
# is missing. Works as root or as a user with sudo. Idempotent and quiet when
# everything is already there.
set -euo pipefail

PKGS=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev
      libcurl4-openssl-dev postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl make gcc clang
      libclang-rt-14-dev clang-format valgrind)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
		|| missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
echo "deps: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	--no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
