# shellcheck shell=bash
# A private Docker engine for `make test-docker` and `make bench-docker`,
# sourced by tests/docker/run.sh and bench/docker.sh (bash, from the repo root).
#
# engine_prepare: checks the machine (root, overlay) and installs what is
#   missing from Debian (docker.io, containerd, runc, debootstrap,
#   busybox-static, tini, musl-tools).
# engine_start: a dockerd of its own: socket, exec-root and pidfile in a fresh
#   directory under /tmp, its own cgroup parent, no iptables, no bridge, so it
#   touches no other Docker on the machine. DOCKER_HOST points the client at it.
#   On exit (trap) dockerd is stopped by its pid, and the containers, test
#   images, volumes, run directory and cgroup parent it made are removed.
# engine_images: the base images, made locally (no registry is needed): a
#   busybox-static rootfs as $BB_IMAGE, and $DEBIAN_IMAGE from debootstrap
#   against the machine's Debian mirror; then the repository's Dockerfile
#   built with the legacy builder as $INIT_IMAGE, the static test apps, and
#   $TEST_IMAGE: busybox with $INIT_IMAGE's /resil-init as ENTRYPOINT and the apps.
# engine_prepare_arm64, engine_images_arm64 (test-docker only): the same
#   Dockerfile built for linux/arm64 as $INIT_IMAGE_ARM64 (cross-compiled in
#   its amd64 build stages, as `make static ARCH=arm64`), the apps cross-built
#   for aarch64, and $TEST_IMAGE_ARM64: $INIT_IMAGE_ARM64 plus those apps.
#
# Kept between runs, in build/docker/engine (dockerd's data-root): the base
# images and the Dockerfile's layer cache, so a second run skips debootstrap
# and the libcurl builds (amd64 and arm64: a layer each). `rm -rf build/docker`
# (or `make clean`) starts over.
#
# The caller defines skip REASON: what to do when the machine cannot run
# Docker (not root, no overlay filesystem, no way to Debian's archive).

DOCKER=/usr/bin/docker # Debian's client, matching the daemon (not /usr/local/bin/docker)
DOCKERD=/usr/sbin/dockerd
CACHE=$PWD/build/docker
DATA_ROOT=$CACHE/engine
APPS=$CACHE/apps
INIT_IMAGE=resil-init:test
BB_IMAGE=resil-bb:local
TEST_IMAGE=resil-test/apps
INIT_IMAGE_ARM64=resil-init:test-arm64
TEST_IMAGE_ARM64=resil-test/apps-arm64
APPS_ARM64=$CACHE/apps-arm64
DEBIAN_IMAGE=debian:bookworm-slim
ENGINE_PACKAGES="docker.io containerd runc debootstrap busybox-static tini musl-tools"
ENGINE_T0=$SECONDS
DOCKERD_PID=
RUN=

say() { printf '== %s: %s (%ss)\n' "${0##*/}" "$*" "$((SECONDS - ENGINE_T0))" >&2; }
die() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

# --- Debian's mirror, from the machine's own apt sources -------------------

debian_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822 stanzas: the URIs of the first stanza whose Suites has bookworm
		awk '
			function stanza() {
				if (uri != "" && suites ~ / bookworm /) { print uri; found = 1; exit }
				uri = ""; suites = ""
			}
			/^[ \t]*$/ { stanza(); next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { $1 = ""; suites = $0 " " }
			END { if (!found) stanza() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		sed -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2 }'
	done
}
MIRROR=$(debian_mirror | grep -m1 '^http' || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

mirror_reachable() {
	local out
	out=$(mktemp /tmp/resil-inrelease.XXXXXX)
	/usr/lib/apt/apt-helper download-file "$MIRROR/dists/bookworm/InRelease" "$out" >/dev/null 2>&1
	local rc=$?
	rm -f "$out"
	return $rc
}

# --- the machine and its packages ----------------------------------------------

engine_prepare() {
	[ "$(id -u)" = 0 ] || skip "needs root (dockerd must run as root)"
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
		skip "the kernel has no overlay filesystem (dockerd's overlay2 storage driver needs it)"
	local p missing=
	for p in $ENGINE_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		say "apt-get install$missing"
		export DEBIAN_FRONTEND=noninteractive
		local apt="apt-get -o DPkg::Lock::Timeout=300"
		# shellcheck disable=SC2086
		$apt install -y -qq --no-install-recommends $missing >/dev/null ||
			{ $apt update -qq && $apt install -y -qq --no-install-recommends $missing >/dev/null; } ||
			{ mirror_reachable && die "apt-get install$missing failed"; } ||
			skip "cannot install$missing: no network to Debian's archive ($MIRROR)"
	fi
	for p in "$DOCKER" "$DOCKERD" /bin/busybox; do
		[ -x "$p" ] || die "$p missing after installing $ENGINE_PACKAGES"
	done
}

# --- a private dockerd ---------------------------------------------------------

engine_stop() {
	local rc=$?
	set +e
	if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		# shellcheck disable=SC2046
		$DOCKER rm -f -v $($DOCKER ps -aq) >/dev/null 2>&1
		# shellcheck disable=SC2046
		$DOCKER rmi -f $($DOCKER images -q --filter reference='resil-test/*') >/dev/null 2>&1
		$DOCKER volume prune -f >/dev/null 2>&1
		kill "$DOCKERD_PID"
		local _
		for _ in $(seq 1 150); do
			kill -0 "$DOCKERD_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$DOCKERD_PID" 2>/dev/null; then
			echo "${0##*/}: dockerd ignored SIGTERM for 15 s: SIGKILL" >&2
			kill -9 "$DOCKERD_PID"
		fi
	fi
	if [ -n "$RUN" ]; then
		# what a killed dockerd may leave mounted under its run directory
		awk -v r="$RUN" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
		rm -rf "$RUN"
	fi
	local d
	for d in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	say "done, exit $rc"
	exit "$rc"
}

engine_start() {
	RUN=$(mktemp -d /tmp/resil-docker.XXXXXX) # short: socket paths live under it
	CGROUP_PARENT=resil-test-docker-$$
	export DOCKER_HOST=unix://$RUN/docker.sock DOCKER_CONFIG=$RUN/client DOCKER_BUILDKIT=0
	trap engine_stop EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	local init_path=/usr/bin/docker-init # Debian links it to tini-static
	[ -x "$init_path" ] || init_path=/usr/bin/tini-static

	mkdir -p "$DATA_ROOT" "$RUN/exec" "$DOCKER_CONFIG"
	say "starting dockerd (data-root $DATA_ROOT, socket $RUN/docker.sock)"
	"$DOCKERD" --iptables=false --ip-masq=false --bridge=none --storage-driver=overlay2 \
		--data-root "$DATA_ROOT" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
		--cgroup-parent "$CGROUP_PARENT" --init-path "$init_path" \
		-H "$DOCKER_HOST" >"$CACHE/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	local _
	for _ in $(seq 1 300); do
		$DOCKER info >/dev/null 2>&1 && break
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! $DOCKER info >/dev/null 2>&1; then
		tail -20 "$CACHE/dockerd.log" >&2
		grep -qi 'overlay' "$CACHE/dockerd.log" && skip "dockerd cannot use overlay2 here (see $CACHE/dockerd.log)"
		die "dockerd did not answer within 30 s (log: $CACHE/dockerd.log)"
	fi
	say "dockerd $($DOCKER version --format '{{.Server.Version}}') answers"
}

# --- images ----------------------------------------------------------------------

import_busybox_image() {
	$DOCKER image inspect "$BB_IMAGE" >/dev/null 2>&1 && return
	say "importing a busybox-static rootfs as $BB_IMAGE"
	local rootfs=$RUN/busybox-rootfs applet
	mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/run" "$rootfs/etc"
	chmod 1777 "$rootfs/tmp"
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
	done
	tar -C "$rootfs" -c . | $DOCKER import -c 'ENV PATH=/bin' - "$BB_IMAGE" >/dev/null
	rm -rf "$rootfs"
}

import_debian_image() {
	$DOCKER image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1 && return
	mirror_reachable || skip "no network to Debian's archive ($MIRROR) for debootstrap"
	say "debootstrap --variant=minbase bookworm from $MIRROR (a minute or two)"
	local rootfs=$RUN/debian-rootfs
	debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -20 "$CACHE/debootstrap.log" >&2 && die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
	# the same mirror inside as outside, so apt-get in a build finds it
	echo "deb $MIRROR bookworm main" >"$rootfs/etc/apt/sources.list"
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -c . | $DOCKER import -c 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
	rm -rf "$rootfs"
}

build_init_image() {
	say "docker build (legacy builder) of ./Dockerfile as $INIT_IMAGE (about 4 minutes the first time)"
	if ! $DOCKER build --network host -t "$INIT_IMAGE" . >"$CACHE/build.log" 2>&1; then
		tail -40 "$CACHE/build.log" >&2
		die "docker build of ./Dockerfile failed (log: $CACHE/build.log)"
	fi
	say "built $INIT_IMAGE"
}

# $1 = directory, the rest: the musl compiler command
build_apps() {
	local dir=$1 src
	shift
	say "compiling the static test apps into $dir"
	mkdir -p "$dir"
	for src in tests/docker/apps/*.c; do
		"$@" -static -std=gnu11 -O2 -Wall -Wextra -Werror -o "$dir/$(basename "$src" .c)" "$src"
	done
	"$@" -static -std=gnu11 -O2 -Wall -Wextra -Werror -o "$dir/demo-app" examples/demo-app.c -lm
}

# busybox-static + the repository image's /resil-init as ENTRYPOINT + the
# static apps in /apps + a page for busybox httpd's health endpoint, so
# `docker run $TEST_IMAGE [OPTIONS] -- APP` runs resil-init as PID 1 over APP.
build_test_image() {
	local ctx=$RUN/test-image
	mkdir -p "$ctx/www"
	cp -r "$APPS" "$ctx/apps"
	echo ok >"$ctx/www/health"
	cat >"$ctx/Dockerfile" <<-EOF
		FROM $INIT_IMAGE AS resil-init
		FROM $BB_IMAGE
		COPY --from=resil-init /resil-init /resil-init
		COPY apps/ /apps/
		COPY www/ /www/
		ENTRYPOINT ["/resil-init"]
	EOF
	$DOCKER build -q -t "$TEST_IMAGE" "$ctx" >/dev/null
}

engine_images() {
	import_busybox_image
	import_debian_image
	build_init_image
	build_apps "$APPS" musl-gcc
	build_test_image
}

# --- arm64: the image for another platform ---------------------------------------

# What `make test-arm64` needs (scripts/deps.sh): the aarch64 cross compiler
# and musl-dev:arm64 for the apps, qemu-user-static to run them on amd64.
engine_prepare_arm64() {
	sh scripts/deps.sh test-arm64 >&2 ||
		{ mirror_reachable && die "scripts/deps.sh test-arm64 failed"; } ||
		skip "cannot install the arm64 cross compiler: no network to Debian's archive ($MIRROR)"
}

# The legacy builder takes --platform (the image's Architecture becomes
# arm64) but sets no TARGETARCH, so it is passed too; BuildKit sets it itself.
build_init_image_arm64() {
	local t0=$SECONDS
	say "docker build --platform linux/arm64 --build-arg TARGETARCH=arm64 (legacy builder) as $INIT_IMAGE_ARM64" \
		"(about 3 minutes the first time)"
	if ! $DOCKER build --network host --platform linux/arm64 --build-arg TARGETARCH=arm64 \
		-t "$INIT_IMAGE_ARM64" . >"$CACHE/build-arm64.log" 2>&1; then
		tail -40 "$CACHE/build-arm64.log" >&2
		die "docker build --platform linux/arm64 of ./Dockerfile failed (log: $CACHE/build-arm64.log)"
	fi
	say "built $INIT_IMAGE_ARM64 in $((SECONDS - t0))s"
}

# $INIT_IMAGE_ARM64 (scratch: /resil-init) + the aarch64 apps in /apps, with
# /resil-init as ENTRYPOINT, as $TEST_IMAGE is for amd64.
build_test_image_arm64() {
	local ctx=$RUN/test-image-arm64
	mkdir -p "$ctx"
	cp -r "$APPS_ARM64" "$ctx/apps"
	cat >"$ctx/Dockerfile" <<-EOF
		FROM $INIT_IMAGE_ARM64
		COPY apps/ /apps/
		ENTRYPOINT ["/resil-init"]
	EOF
	$DOCKER build -q --platform linux/arm64 -t "$TEST_IMAGE_ARM64" "$ctx" >/dev/null
}

engine_images_arm64() {
	build_init_image_arm64
	if [ "$(dpkg --print-architecture)" = arm64 ]; then
		build_apps "$APPS_ARM64" musl-gcc
	else
		build_apps "$APPS_ARM64" aarch64-linux-gnu-gcc -specs /usr/lib/aarch64-linux-musl/musl-gcc.specs
	fi
	build_test_image_arm64
}
