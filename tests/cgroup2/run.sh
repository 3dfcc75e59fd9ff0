#!/bin/sh
# make test-cgroup2: resil-init's memory handling on a real cgroup v2 kernel.
#
# Boots Debian's own kernel (the linux-image-amd64 package, fetched with
# `apt-get download`, never installed) under qemu with a busybox initramfs that
# holds build/resil-init-static, the scenario programs (memhog, nscg) and
# tests/cgroup2/init.sh as /init. /init runs every scenario of scenarios.list
# in cgroups of its own and prints "SCENARIO <name> PASS|FAIL ..." lines on the
# serial console; this script prints the console log and fails unless every
# listed scenario passed.
#
# Installs what it lacks with apt-get when root (qemu-system-x86,
# busybox-static, musl-tools). The kernel is cached in build/cgroup2/kernel/,
# so a second run only packs the initramfs and boots (~1 min under TCG).
# Skips, saying why, where the machine cannot run it: not x86_64, tools missing
# and not root, or Debian's archive unreachable. RESIL_CGROUP2_REQUIRED=1 (CI)
# turns a skip into a failure.
#
# Environment:
#   RESIL_INIT_STATIC       the binary to test (default build/resil-init-static)
#   RESIL_CGROUP2_TIMEOUT   seconds the VM may run (default 900)
#   RESIL_CGROUP2_REQUIRED  1: fail instead of skipping
#   RESIL_CGROUP2_ONLY      names of scenarios to run (default: all of them)
set -eu

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$ROOT"
HERE=tests/cgroup2
OUT=$ROOT/build/cgroup2
BIN=${RESIL_INIT_STATIC:-$ROOT/build/resil-init-static}
TIMEOUT=${RESIL_CGROUP2_TIMEOUT:-900}
START=$(date +%s)

log() { printf '==> test-cgroup2 [%ss]: %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() {
	printf 'test-cgroup2: error: %s\n' "$*" >&2
	exit 1
}
skip() {
	printf 'test-cgroup2: SKIPPED: %s\n' "$*" >&2
	if [ "${RESIL_CGROUP2_REQUIRED:-0}" = 1 ]; then
		die "RESIL_CGROUP2_REQUIRED=1: a skipped test-cgroup2 is a failure"
	fi
	exit 0
}
is_root() { [ "$(id -u)" = 0 ]; }

# The VM runs the host's static binaries, and the kernel is Debian's amd64 one.
[ "$(uname -m)" = x86_64 ] || skip "needs an x86_64 host (this is $(uname -m)): the VM runs this machine's static binaries on Debian's amd64 kernel"
[ -x "$BIN" ] || die "$BIN missing: run make static first (make test-cgroup2 does)"

# --- 1. tools --------------------------------------------------------------
APT_UPDATED=
apt_update() {
	[ -z "$APT_UPDATED" ] || return 0
	log "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
	APT_UPDATED=1
}

pkg_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
# the dynamic busybox package would need its libraries in the initramfs
pkg_installed busybox-static || missing="$missing busybox-static"
command -v musl-gcc >/dev/null 2>&1 || missing="$missing musl-tools"
for pair in gzip:gzip dpkg-deb:dpkg apt-get:apt timeout:coreutils; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
done
if [ -n "$missing" ]; then
	is_root || skip "missing:$missing, and not root to install them (apt-get install$missing)"
	log "installing:$missing"
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
		apt_update || skip "apt-get update failed: no network to Debian's archive?"
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
			skip "apt-get install$missing failed: no network to Debian's archive?"
	fi
fi
BUSYBOX=$(command -v busybox) || die "busybox-static is installed but busybox is not on PATH"

# --- 2. the kernel -----------------------------------------------------------
KDIR=$OUT/kernel
mkdir -p "$KDIR"

# linux-image-amd64 is a metapackage: the kernel is the package it depends on.
resolve_kernel() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1
}

KPKG=$(resolve_kernel)
if [ -z "$KPKG" ] && is_root; then
	apt_update && KPKG=$(resolve_kernel)
fi
if [ -z "$KPKG" ]; then
	KPKG=$(cat "$KDIR/current" 2>/dev/null || true)
	[ -n "$KPKG" ] || skip "apt-cache cannot resolve linux-image-amd64 (no APT lists, and not root to update them)"
	log "apt-cache cannot resolve linux-image-amd64: using the cached $KPKG"
fi

KERNEL=$KDIR/$KPKG/vmlinuz
if [ -s "$KERNEL" ] && [ -s "$KDIR/$KPKG/config" ]; then
	log "kernel: $KPKG (cached in ${KERNEL#"$ROOT"/})"
else
	log "kernel: apt-get download $KPKG"
	rm -rf "$KDIR/download"
	mkdir -p "$KDIR/download"
	# build/ may not be readable by APT's _apt sandbox user
	sandbox=
	is_root && sandbox='-o APT::Sandbox::User=root'
	# shellcheck disable=SC2086
	if ! (cd "$KDIR/download" && apt-get download -qq $sandbox "$KPKG"); then
		if is_root && apt_update; then
			# shellcheck disable=SC2086
			(cd "$KDIR/download" && apt-get download -qq $sandbox "$KPKG") ||
				skip "apt-get download $KPKG failed: no network to Debian's archive?"
		else
			skip "apt-get download $KPKG failed: no network to Debian's archive?"
		fi
	fi
	deb=$(ls "$KDIR/download/"*.deb)
	mkdir -p "$KDIR/$KPKG"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './boot/vmlinuz-*' >"$KERNEL.tmp" ||
		die "no ./boot/vmlinuz-* in $deb"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './boot/config-*' >"$KDIR/$KPKG/config" ||
		die "no ./boot/config-* in $deb"
	mv "$KERNEL.tmp" "$KERNEL"
	rm -rf "$KDIR/download"
	# a kernel the archive no longer points at is not needed again
	for old in "$KDIR"/linux-image-*; do
		[ "$old" = "$KDIR/$KPKG" ] || rm -rf "$old"
	done
	log "kernel: extracted ${KERNEL#"$ROOT"/} ($(wc -c <"$KERNEL" | tr -d ' ') bytes)"
fi
printf '%s\n' "$KPKG" >"$KDIR/current"

# What the scenarios use must be built in: the initramfs has no modules.
CONFIG=$KDIR/$KPKG/config
for opt in CONFIG_CGROUPS CONFIG_MEMCG CONFIG_PSI CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP \
	CONFIG_DEVTMPFS CONFIG_TMPFS CONFIG_SERIAL_8250_CONSOLE; do
	grep -qx "$opt=y" "$CONFIG" || die "$KPKG: $opt is not built in (see $CONFIG)"
done
CMDLINE='console=ttyS0 quiet panic=-1'
# a kernel built with PSI off by default needs it asked for
if grep -qx 'CONFIG_PSI_DEFAULT_DISABLED=y' "$CONFIG"; then
	CMDLINE="$CMDLINE psi=1"
fi

# --- 3. the initramfs --------------------------------------------------------
log "building memhog and nscg with musl-gcc -static"
mkdir -p "$OUT/bin"
for prog in memhog nscg; do
	musl-gcc -static -std=gnu11 -O2 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
		-o "$OUT/bin/$prog" "$HERE/$prog.c" || die "cannot build $HERE/$prog.c"
done

IMG=$OUT/root
rm -rf "$IMG"
mkdir -p "$IMG/bin" "$IMG/scen" "$IMG/dev" "$IMG/proc" "$IMG/sys" "$IMG/tmp" "$IMG/run"
cp "$BUSYBOX" "$IMG/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$IMG/bin/$applet"
done
cp "$BIN" "$IMG/bin/resil-init"
cp "$OUT/bin/memhog" "$OUT/bin/nscg" "$IMG/bin/"
cp "$HERE/init.sh" "$IMG/init"
cp "$HERE/scenarios.sh" "$HERE/report-env.sh" "$IMG/scen/"
SCENARIOS=$(sed -e 's/#.*//' "$HERE/scenarios.list")
if [ -n "${RESIL_CGROUP2_ONLY:-}" ]; then
	# shellcheck disable=SC2086 # lists of words
	for name in $RESIL_CGROUP2_ONLY; do
		printf '%s\n' $SCENARIOS | grep -qx "$name" || die "no scenario $name in $HERE/scenarios.list"
	done
	SCENARIOS=$RESIL_CGROUP2_ONLY
	log "only: $SCENARIOS"
fi
# shellcheck disable=SC2086
printf '%s\n' $SCENARIOS >"$IMG/scen/scenarios.list"
chmod 0755 "$IMG/init" "$IMG/scen/report-env.sh"
(cd "$IMG" && find . | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$OUT/initrd.gz"
log "initramfs: ${OUT#"$ROOT"/}/initrd.gz ($(wc -c <"$OUT/initrd.gz" | tr -d ' ') bytes)"

# --- 4. boot -----------------------------------------------------------------
# TCG by default: on a nested host a /dev/kvm can be present and writable
# yet hang the guest before its first console line (kvm-pvm did, 2026-12-02),
# which only the timeout ends. RESIL_CGROUP2_ACCEL=kvm:tcg asks for KVM.
ACCEL=${RESIL_CGROUP2_ACCEL:-tcg}
log "booting $KPKG under qemu ($ACCEL, 512 MiB, timeout ${TIMEOUT}s): $CMDLINE"
CONSOLE=$OUT/console.log
echo '----- VM console -----------------------------------------------------------'
# The console as it comes (carriage returns and SeaBIOS's screen codes removed).
{
	rc=0
	# --foreground: qemu stays in this process group, so stopping make stops it
	timeout --foreground "$TIMEOUT" qemu-system-x86_64 -machine "accel=$ACCEL" -m 512 -smp 1 -nographic \
		-no-reboot -nic none -kernel "$KERNEL" -initrd "$OUT/initrd.gz" -append "$CMDLINE" \
		</dev/null 2>&1 || rc=$?
	echo "QEMU-EXIT $rc"
} | sed -u 's/\r//g; s/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | tee "$CONSOLE"
echo '----- end of VM console ----------------------------------------------------'

# --- 5. verdict --------------------------------------------------------------
qemu_rc=$(sed -n 's/^QEMU-EXIT //p' "$CONSOLE")
failures=0
echo "test-cgroup2 results ($KPKG):"
for name in $SCENARIOS; do
	line=$(grep -E "^SCENARIO $name (PASS|FAIL)" "$CONSOLE" | head -n 1 || true)
	case $line in
	"SCENARIO $name PASS"*) echo "  PASS  $name ${line#"SCENARIO $name PASS "}" ;;
	"SCENARIO $name FAIL"*)
		echo "  FAIL  $name ${line#"SCENARIO $name FAIL "}"
		failures=$((failures + 1))
		;;
	*)
		echo "  MISSING  $name (no result line on the console)"
		failures=$((failures + 1))
		;;
	esac
done
grep -q '^CGROUP2-SETUP FAIL' "$CONSOLE" && {
	echo "  FAIL  setup: $(grep '^CGROUP2-SETUP FAIL' "$CONSOLE")"
	failures=$((failures + 1))
}
grep -q '^CGROUP2-DONE' "$CONSOLE" || {
	echo "  FAIL  the VM did not finish its scenarios (qemu exit $qemu_rc; 124 = timed out)"
	failures=$((failures + 1))
}
log "took $(($(date +%s) - START))s; console log in ${CONSOLE#"$ROOT"/}"
[ "$failures" = 0 ] || die "$failures scenario(s) failed or missing"
log "all scenarios passed"
