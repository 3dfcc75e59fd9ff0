#!/bin/sh
# resil-init benchmark: resil-init (dynamic and static) against tini,
# tini-static and dumb-init, side by side. `make bench` runs this.
#
# Usage: sh bench/run.sh [--save] [--sections size,startup,sigterm,forward-pages,syscalls,idle,signals,reap,shutdown,health,memory]
#   --save   also write the table to bench/results.md (it always goes to stdout
#            and to build/bench/results.md, raw numbers to build/bench/results.json)
# Method, knobs (BENCH_* variables) and how to read the table: bench/README.md.
# Needs Linux, python3, unshare (util-linux) and root (or unprivileged user
# namespaces); about 2 minutes on 2 cores.
set -eu
cd "$(dirname "$0")/.."

# The peers (and curl) come from Debian's packages; install them when missing and root.
need=
{ command -v tini >/dev/null 2>&1 && [ -x /usr/bin/tini-static ]; } || need="$need tini"
command -v dumb-init >/dev/null 2>&1 || need="$need dumb-init"
# curl: the per-check cost of Docker's `HEALTHCHECK CMD curl -fsS URL`
command -v curl >/dev/null 2>&1 || need="$need curl"
# strace: the syscall-count row
command -v strace >/dev/null 2>&1 || need="$need strace"
if [ -n "$need" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "bench: apt-get install -y$need" >&2
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null 2>&1 ||
			{ DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null; } ||
			echo "bench: warning: could not install$need; measuring the inits that are there" >&2
	else
		echo "bench: warning:$need missing (as root: apt-get install -y tini dumb-init curl strace);" \
			"measuring the inits that are there" >&2
	fi
fi

command -v unshare >/dev/null 2>&1 || {
	echo "bench: unshare not found (package util-linux)" >&2
	exit 1
}
[ -x build/resil-init ] || echo "bench: warning: build/resil-init missing (make build/resil-init)" >&2
[ -x build/resil-init-static ] || echo "bench: warning: build/resil-init-static missing (make static)" >&2

PY=${PYTHON:-}
if [ -z "$PY" ]; then
	if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
fi
exec "$PY" bench/bench.py "$@"
