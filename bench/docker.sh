#!/usr/bin/env bash
# `make bench-docker`: docker stop latency and container start overhead under a
# real Docker engine, resil-init vs `docker run --init` (tini) vs no init, in
# one run (bench/docker_bench.py; method in bench/README.md). The engine and the
# images are those of `make test-docker` (tests/docker/engine.sh): as root,
# installs docker.io itself; a few minutes the first time, then ~1 minute.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
	printf 'bench-docker: not measured: %s\n' "$*" >&2
	exit 0
}

. tests/docker/engine.sh
engine_prepare
engine_start
engine_images
say "measuring"
RESIL_DOCKER=$DOCKER RESIL_DOCKER_TEST_IMAGE=$TEST_IMAGE /usr/bin/python3 bench/docker_bench.py
