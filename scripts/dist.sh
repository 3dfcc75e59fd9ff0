#!/bin/sh
# Release files for `make dist`, into build/dist/:
#   resil-init-VERSION-linux-ARCH.tar.gz   the static binary, its man page,
#                                          README.md, in resil-init-VERSION-linux-ARCH/
#   resil-init-VERSION-linux-ARCH          the bare static binary (for a
#                                          Dockerfile's ADD --checksum=...)
#   SHA256SUMS                             sha256sum -c format, all of the above
# ARCH is Docker's and Debian's name (amd64, arm64), so a Dockerfile can pick
# its file with ${TARGETARCH}. The tarballs are reproducible: sorted names,
# owner 0, the mtime of the last commit (or SOURCE_DATE_EPOCH), gzip -n.
#
# Usage: sh scripts/dist.sh STATIC_BINARY...
#   each is build/resil-init-static (amd64) or build/resil-init-static-ARCH
# Environment: RESIL_DIST_DIR (default build/dist), SOURCE_DATE_EPOCH
set -eu

die() {
	printf 'dist: error: %s\n' "$*" >&2
	exit 1
}

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"
[ $# -gt 0 ] || die "no binaries given (usage: sh scripts/dist.sh build/resil-init-static...)"
VERSION=$(cat VERSION) || die "VERSION missing"
MAN=docs/resil-init.1
[ -f "$MAN" ] || die "$MAN missing"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) || SOURCE_DATE_EPOCH=0
fi
DIST=${RESIL_DIST_DIR:-build/dist}
STAGE=$DIST.stage
rm -rf "$DIST" "$STAGE"
mkdir -p "$DIST" "$STAGE"

for bin in "$@"; do
	[ -f "$bin" ] || die "$bin missing"
	case $(basename "$bin") in
	resil-init-static) arch=amd64 ;;
	resil-init-static-*) arch=${bin##*/resil-init-static-} ;;
	*) die "$bin: not a build/resil-init-static[-ARCH] binary" ;;
	esac
	desc=$(file -b "$bin") || die "file $bin failed"
	case $desc in
	*"statically linked"*) ;;
	*) die "$bin is not statically linked: $desc" ;;
	esac
	name=resil-init-$VERSION-linux-$arch
	install -D -m 0755 "$bin" "$STAGE/$name/resil-init"
	install -m 0644 "$MAN" README.md "$STAGE/$name/"
	touch -d "@$SOURCE_DATE_EPOCH" "$STAGE/$name" "$STAGE/$name"/*
	tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" | gzip -n -9 >"$DIST/$name.tar.gz"
	install -m 0755 "$bin" "$DIST/$name"
done
rm -rf "$STAGE"
(cd "$DIST" && sha256sum -- * >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
printf 'dist: %s\n' "$DIST"/*
