#!/usr/bin/env bash
# `make test-docker`: resil-init under a real Docker engine.
#
# As root: installs Docker from Debian, starts a private dockerd, makes the base
# images locally, builds the repository's Dockerfile with the legacy builder
# (for amd64 and for arm64) and the static test apps (for both) (all in tests/docker/engine.sh), then runs
# tests/docker/test_docker.py against that engine. On exit dockerd is stopped
# by its pid and what it made is removed, except its cache in build/docker.
#
# Where the machine cannot run it (not root, no overlay filesystem, no way to
# Debian's archive) every test is reported as skipped with the reason; with
# RESIL_REQUIRE_DOCKER=1 (CI) that is a failure instead.
#
# Environment: PYTEST_ARGS (e.g. "-k stop"), RESIL_REQUIRE_DOCKER.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=/usr/bin/python3

skip() {
	printf 'test-docker: SKIPPED: %s\n' "$*" >&2
	if [ "${RESIL_REQUIRE_DOCKER:-0}" = 1 ]; then
		echo "test-docker: RESIL_REQUIRE_DOCKER=1: a skip is a failure here" >&2
		exit 1
	fi
	RESIL_DOCKER_SKIP="$*" "$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/docker
	exit 0
}

. tests/docker/engine.sh
engine_prepare
engine_prepare_arm64
engine_start
engine_images
engine_images_arm64

say "pytest tests/docker"
export RESIL_DOCKER=$DOCKER RESIL_DOCKER_INIT_IMAGE=$INIT_IMAGE RESIL_DOCKER_BB_IMAGE=$BB_IMAGE \
	RESIL_DOCKER_TEST_IMAGE=$TEST_IMAGE RESIL_DOCKER_RUN=$RUN \
	RESIL_DOCKER_INIT_IMAGE_ARM64=$INIT_IMAGE_ARM64 RESIL_DOCKER_TEST_IMAGE_ARM64=$TEST_IMAGE_ARM64
# shellcheck disable=SC2086
"$PYTHON" -m pytest -v -rs -p no:cacheprovider ${PYTEST_ARGS:-} tests/docker
