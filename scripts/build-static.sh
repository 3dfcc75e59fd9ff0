#!/bin/sh
# Build build/resil-init-static: a fully static musl binary of resil-init,
# for amd64 or (natively or cross-compiled) arm64: build/resil-init-static-arm64.
#
# libcurl and cJSON are built from Debian's *source* packages (with Debian's
# patches applied by dpkg-source) into a private prefix under build/deps/, so
# the result carries the same security fixes as the distribution's libraries.
#
# Used by `make static` and by the Dockerfile's build stage, so what CI tests is
# exactly what the image ships.  Steps whose output already exists are skipped;
# delete build/deps/ to start over.
#
# Usage: sh scripts/build-static.sh [--deps-only] [--arch ARCH] [--output FILE]
#   --deps-only      only build libcurl and cJSON into build/deps/prefix (the
#                    Dockerfile uses it so the deps get their own cached layer)
#   --arch ARCH      amd64 or arm64, Debian's names (default, or empty: this
#                    machine's). Another architecture than this machine's is
#                    cross-compiled: its-gnu-gcc with musl-dev:ARCH's specs file
#   --output FILE    the binary (default: build/resil-init-static for amd64,
#                    build/resil-init-static-ARCH for another ARCH)
# Environment:
#   EXTRA_CFLAGS     added to the compile flags of src/*.c
#   JOBS             parallel make jobs (default: number of CPUs)
#   RESIL_DEPS_DIR   where deps are built (default: <repo>/build/deps for amd64,
#                    <repo>/build/deps-ARCH for another ARCH)
#   RESIL_NO_APT=1   never call apt-get (fail instead when something is missing)
# The packages it needs are installed (or asked for) by scripts/deps.sh.
set -eu

log() { printf '==> build-static: %s\n' "$*" >&2; }
die() {
	printf 'build-static: error: %s\n' "$*" >&2
	exit 1
}

DEPS_ONLY=0
ARCH=
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--deps-only) DEPS_ONLY=1 ;;
	--arch | --output)
		[ $# -ge 2 ] || die "$1 needs a value (try --help)"
		if [ "$1" = --arch ]; then ARCH=$2; else OUT=$2; fi
		shift
		;;
	--arch=*) ARCH=${1#*=} ;;
	--output=*) OUT=${1#*=} ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument: $1 (try --help)" ;;
	esac
	shift
done

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"

# --- the target architecture ------------------------------------------------
HOST_ARCH=$(dpkg --print-architecture 2>/dev/null) || case $(uname -m) in
x86_64) HOST_ARCH=amd64 ;;
aarch64) HOST_ARCH=arm64 ;;
*) HOST_ARCH=$(uname -m) ;;
esac
ARCH=${ARCH:-$HOST_ARCH}
case $ARCH in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; esac # uname -m's names
# GNU triplet (Debian's cross compilers), musl's directory, what file(1) says
case $ARCH in
amd64) GNU_TRIPLET=x86_64-linux-gnu MUSL_TRIPLET=x86_64-linux-musl FILE_ARCH=x86-64 ;;
arm64) GNU_TRIPLET=aarch64-linux-gnu MUSL_TRIPLET=aarch64-linux-musl FILE_ARCH='ARM aarch64' ;;
*) die "unsupported --arch '$ARCH' (amd64 or arm64)" ;;
esac
if [ "$ARCH" = amd64 ]; then SUFFIX=; else SUFFIX=-$ARCH; fi

DEPS=${RESIL_DEPS_DIR:-$ROOT/build/deps$SUFFIX}
case $DEPS in /*) ;; *) DEPS=$ROOT/$DEPS ;; esac
SRC=$DEPS/src
PREFIX=$DEPS/prefix
OUT=${OUT:-$ROOT/build/resil-init-static$SUFFIX}
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac
OBJ=$ROOT/build/static-obj$SUFFIX
JOBS=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
START=$(date +%s)

is_root() { [ "$(id -u)" = 0 ]; }

# --- 1. APT helpers -------------------------------------------------------
have_deb_src() {
	grep -Eqs '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources 2>/dev/null ||
		grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
}

add_deb_src() {
	is_root || die "no deb-src entry in APT's sources and not root: add one (Types: deb-src) and run apt-get update"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		log "adding /etc/apt/sources.list.d/debian-src.sources (Types: deb-src)"
		sed 's/^\([[:space:]]*\)Types:.*/\1Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			>/etc/apt/sources.list.d/debian-src.sources
	elif grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
		log "adding /etc/apt/sources.list.d/debian-src.list (deb-src copies of sources.list)"
		sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list \
			>/etc/apt/sources.list.d/debian-src.list
	else
		die "cannot find Debian's APT sources to derive a deb-src entry from"
	fi
	APT_UPDATED=
}

# --- 2. tools (scripts/deps.sh installs them when root, else says how) -----
NEED_SOURCES=1
[ -f "$PREFIX/lib/libcurl.a" ] && [ -f "$PREFIX/lib/libcjson.a" ] && NEED_SOURCES=0
# the deb-src entry first, so that one apt-get update fetches both indexes
[ "$NEED_SOURCES" = 0 ] || have_deb_src || { is_root && [ "${RESIL_NO_APT:-0}" != 1 ] && add_deb_src; } || true
if [ "$ARCH" = "$HOST_ARCH" ]; then deps_target=static; else deps_target=static-$ARCH; fi
sh "$ROOT/scripts/deps.sh" "$deps_target" >&2 || die "build tools missing (see above)"

APT_UPDATED=
apt_update() {
	[ -n "$APT_UPDATED" ] && return 0
	log "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
		die "apt-get update failed"
	APT_UPDATED=1
}

# $1 = source package name: download its .dsc and tarballs into $SRC (cached).
# APT checks them against the signed Sources index; dpkg-source then says it
# cannot check the .dsc's own signature unless debian-keyring is installed,
# which is harmless.
apt_source() {
	# build/ may not be readable by APT's _apt sandbox user: download as root
	# rather than print a warning for every file.
	if is_root; then set -- -o APT::Sandbox::User=root "$@"; fi
	(cd "$SRC" && apt-get source -qq --download-only "$@")
}

fetch_source() {
	if ls "$SRC/$1"_*.dsc >/dev/null 2>&1; then
		log "source $1: already downloaded"
		return 0
	fi
	have_deb_src || { add_deb_src && apt_update; }
	log "source $1: apt-get source --download-only $1"
	# quiet: APT's error is expected when the deb-src entry was added after
	# the last apt-get update (scripts/deps.sh updates only for packages)
	if ! apt_source "$1" 2>/dev/null; then
		# deb-src present but its index not downloaded yet (e.g. a fresh image)
		is_root || die "apt-get source $1 failed (not root, cannot run apt-get update)"
		APT_UPDATED=
		apt_update
		apt_source "$1" || die "apt-get source --download-only $1 failed"
	fi
}

# $1 = source package name; prints the unpacked directory (cached)
unpack_source() {
	# shellcheck disable=SC2012
	dsc=$(ls "$SRC/$1"_*.dsc | sort -V | tail -n 1)
	base=$(basename "$dsc" .dsc)     # e.g. curl_7.88.1-10+deb12u15
	dir=$SRC/$1-unpacked-${base#*_}
	if [ ! -f "$dir/.unpacked" ]; then
		log "source $1: dpkg-source -x $(basename "$dsc") (applies Debian's patches)"
		rm -rf "$dir"
		(cd "$SRC" && dpkg-source -q -x "$dsc" "$dir") >&2 ||
			die "dpkg-source -x $dsc failed"
		: >"$dir/.unpacked"
	fi
	printf '%s\n' "$dir"
}

mkdir -p "$SRC" "$PREFIX"

# --- size flags, shared by cJSON, libcurl and resil-init --------------------
# The binary's size budget (tests/integration/test_static_build.py) is met by:
#  * -Os, and one section per function/object so the final --gc-sections
#    drops whatever resil-init never calls;
#  * no unwind tables (.eh_frame was ~29 KB): this is C, nothing unwinds the
#    stack (no C++ exceptions; musl's thread cancellation does not unwind;
#    musl's own libc.a has none either). A build with EXTRA_CFLAGS=-g still
#    gets .debug_frame for debuggers;
#  * link-time optimisation across resil-init, libcurl and cJSON (~12 KB):
#    the archives then hold GCC's LTO bytecode, so they are made with the
#    plugin-aware gcc-ar/gcc-ranlib and are tied to this exact compiler
#    (its version is part of the stamps below).
# Hardening is what Debian's gcc gives by default (no stack protector, no CET
# by default; the static binary is not PIE): nothing is switched off here.
# The linker keeps its defaults (-z separate-code, -z relro: no executable
# headers or read-only data), but for arm64's relro, which musl never applies
# in a static binary (see ARCH_LDFLAGS below).
SIZE_CFLAGS='-Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables -flto'

# --- link flags of one architecture -----------------------------------------
# arm64: ld aligns the end of PT_GNU_RELRO to the 64 KiB maximum page size,
# which padded the file by ~42 KB (to 330 KB, over budget). musl applies RELRO
# only in its dynamic loader, never in a static binary (nothing mprotect()s the
# region: /proc/PID/maps shows it writable), so -z norelro drops padding and
# nothing else; the segments stay 64 KiB-aligned for 16/64 KiB-page kernels.
# amd64 (4 KiB pages) keeps the linker's defaults.
# arm64 code is also made for the tiny code model: the whole binary is far
# below its 1 MiB reach, so an address takes one ADR instead of ADRP+ADD
# (-2.5 KB). It goes on the link line too, where LTO generates the code of
# resil-init, libcurl and cJSON alike.
case $ARCH in
arm64)
	ARCH_LDFLAGS='-Wl,-z,norelro'
	ARCH_CFLAGS='-mcmodel=tiny'
	;;
*)
	ARCH_LDFLAGS=
	ARCH_CFLAGS=
	;;
esac

# --- the compiler: musl-gcc here, or the cross gcc with musl's specs file ----
# The same flags for every architecture; only the tools' names differ.
if [ "$ARCH" = "$HOST_ARCH" ]; then
	CC=musl-gcc
	TOOL_PREFIX=
	CMAKE_CROSS=
	CURL_CROSS=
else
	TOOL_PREFIX=$GNU_TRIPLET-
	SPECS=/usr/lib/$MUSL_TRIPLET/musl-gcc.specs
	[ -f "$SPECS" ] || die "$SPECS missing (package musl-dev:$ARCH)"
	command -v "${TOOL_PREFIX}gcc" >/dev/null 2>&1 || die "${TOOL_PREFIX}gcc not found"
	# what musl-gcc is on an $ARCH machine: one command for cmake and configure
	mkdir -p "$DEPS/bin"
	CC=$DEPS/bin/$MUSL_TRIPLET-gcc
	printf '#!/bin/sh\nexec %s "$@" -specs "%s"\n' "${TOOL_PREFIX}gcc" "$SPECS" >"$CC.tmp"
	chmod +x "$CC.tmp"
	mv -f "$CC.tmp" "$CC"
	CMAKE_CROSS="-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=${GNU_TRIPLET%%-*}"
	CURL_CROSS="--host=$MUSL_TRIPLET --build=$(gcc -dumpmachine)"
fi
GCC_AR=$(command -v "${TOOL_PREFIX}gcc-ar") || die "${TOOL_PREFIX}gcc-ar not found"
GCC_RANLIB=$(command -v "${TOOL_PREFIX}gcc-ranlib") || die "${TOOL_PREFIX}gcc-ranlib not found"
GCC_NM=$(command -v "${TOOL_PREFIX}gcc-nm") || die "${TOOL_PREFIX}gcc-nm not found"
STRIP=$(command -v "${TOOL_PREFIX}strip") || die "${TOOL_PREFIX}strip not found"
CC_NAME=$(basename "$CC")
# LTO bytecode is only readable by the compiler that wrote it
TOOLCHAIN_ID=$("$CC" --version 2>/dev/null | head -n 1)
[ -n "$TOOLCHAIN_ID" ] || die "$CC --version failed"
[ -z "$TOOL_PREFIX" ] || TOOLCHAIN_ID="$TOOLCHAIN_ID, musl $ARCH"

# --- 3. cJSON (CMake, static) ----------------------------------------------
CJSON_CFLAGS=$SIZE_CFLAGS
CJSON_STAMP=$PREFIX/lib/.libcjson-build-options
CJSON_STAMP_LINE="CFLAGS=$CJSON_CFLAGS -DNDEBUG AR=gcc-ar; cc=$TOOLCHAIN_ID"
if [ -f "$PREFIX/lib/libcjson.a" ] && [ -f "$PREFIX/lib/pkgconfig/libcjson.pc" ] &&
	[ "$(cat "$CJSON_STAMP" 2>/dev/null)" = "$CJSON_STAMP_LINE" ]; then
	log "cJSON: $PREFIX/lib/libcjson.a exists, skipping"
else
	[ ! -f "$PREFIX/lib/libcjson.a" ] || log "cJSON: build options changed, rebuilding"
	rm -f "$PREFIX/lib/libcjson.a" "$CJSON_STAMP"
	fetch_source cjson
	CJSON_DIR=$(unpack_source cjson)
	log "cJSON: building $(basename "$CJSON_DIR") with $CC_NAME"
	rm -rf "$DEPS/build-cjson"
	# shellcheck disable=SC2086
	cmake -S "$CJSON_DIR" -B "$DEPS/build-cjson" $CMAKE_CROSS \
		-DCMAKE_C_COMPILER="$CC" \
		-DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS_RELEASE='-Os -DNDEBUG' \
		-DCMAKE_C_FLAGS="$CJSON_CFLAGS" \
		-DCMAKE_AR="$GCC_AR" \
		-DCMAKE_RANLIB="$GCC_RANLIB" \
		-DCMAKE_INSTALL_PREFIX="$PREFIX" \
		-DCMAKE_INSTALL_LIBDIR=lib \
		-DCMAKE_INSTALL_INCLUDEDIR=include \
		-DBUILD_SHARED_LIBS=OFF \
		-DBUILD_SHARED_AND_STATIC_LIBS=OFF \
		-DENABLE_CJSON_TEST=OFF \
		-DENABLE_CJSON_UTILS=OFF \
		-DENABLE_CUSTOM_COMPILER_FLAGS=OFF \
		-DENABLE_TARGET_EXPORT=OFF \
		>"$DEPS/cjson-cmake.log" 2>&1 ||
		{ tail -n 30 "$DEPS/cjson-cmake.log" >&2; die "cJSON: cmake configure failed (log: $DEPS/cjson-cmake.log)"; }
	{ cmake --build "$DEPS/build-cjson" -j "$JOBS" && cmake --install "$DEPS/build-cjson"; } \
		>"$DEPS/cjson-build.log" 2>&1 ||
		{ tail -n 30 "$DEPS/cjson-build.log" >&2; die "cJSON: build failed (log: $DEPS/cjson-build.log)"; }
	[ -f "$PREFIX/lib/libcjson.a" ] || die "cJSON: libcjson.a was not installed into $PREFIX/lib"
	[ -f "$PREFIX/lib/pkgconfig/libcjson.pc" ] || die "cJSON: libcjson.pc was not installed"
	printf '%s\n' "$CJSON_STAMP_LINE" >"$CJSON_STAMP"
fi

# --- 4. libcurl (autotools, static, HTTP only) -----------------------------
# HTTP (and HTTP over a Unix socket) is all the health check needs; no TLS.
# The threaded resolver stays: a blocking getaddrinfo() would stall PID 1.
# IPv6 stays: a health URL may be http://[::1]:PORT/.
# Left out because resil-init never uses them:
#   --disable-verbose       infof() texts (resil-init never sets CURLOPT_VERBOSE)
#                           and the message tables behind curl_easy_strerror(),
#                           curl_url_strerror() & co., which then answer "Error".
#                           failf() messages into CURLOPT_ERRORBUFFER remain
#                           (e.g. "Could not resolve host: x", "Received HTTP/0.9
#                           when not allowed"); -13 KB
#   --disable-dateparse     HTTP date parsing (only for cookies, HSTS, alt-svc,
#                           CURLOPT_TIMECONDITION/FILETIME, Retry-After); -3 KB
#   --disable-headers-api   curl_easy_header()/nextheader(); -0.8 KB
#   --disable-proxy         proxies (HTTP/SOCKS, CONNECT tunnels, http_proxy &
#                           co.): proxy variables never apply to a health check
#                           (SPEC), and a curl without proxy code cannot read
#                           them. src/health.c takes its refusal of CURLOPT_PROXY
#                           and CURLOPT_NOPROXY (which a curl with proxy support,
#                           e.g. the dynamic build's, needs) as "no proxy can
#                           apply"; -21 KB
#   --disable-socketpair    the multi handle's wake-up pair (curl_multi_wakeup/
#                           poll, unused) and the resolver thread's pair (the
#                           resolver is then polled on curl's timer, 1 ms
#                           doubling to 250 ms): also descriptors fewer that the
#                           app could inherit (the resolver's pair was not
#                           close-on-exec); -0.5 KB
# HTTP authentication stays (a URL's user:password@ still sends Basic auth).
CURL_OPTS='--disable-shared --enable-static --with-pic=no
	--disable-dependency-tracking --disable-silent-rules
	--enable-http --enable-unix-sockets --enable-threaded-resolver
	--enable-ipv6 --enable-http-auth
	--disable-verbose --disable-dateparse --disable-headers-api --disable-socketpair
	--disable-proxy
	--disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp
	--disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap
	--disable-smb --disable-smtp --disable-gopher --disable-mqtt
	--disable-manual --disable-libcurl-option --disable-ntlm --disable-ntlm-wb
	--disable-crypto-auth --disable-tls-srp --disable-sspi --disable-netrc
	--disable-cookies --disable-mime --disable-get-easy-options
	--disable-dnsshuffle --disable-progress-meter --disable-alt-svc
	--disable-hsts --disable-websockets --disable-doh
	--without-ssl --without-zlib --without-brotli --without-zstd
	--without-libpsl --without-libidn2 --without-nghttp2 --without-nghttp3
	--without-ngtcp2 --without-quiche --without-msh3 --without-hyper
	--without-librtmp --without-libssh2 --without-libssh --without-wolfssh
	--without-libgsasl --without-gssapi --without-ca-bundle --without-ca-path
	--without-ca-fallback'
CURL_CFLAGS=$SIZE_CFLAGS
CURL_STAMP=$PREFIX/lib/.libcurl-configure-options
# shellcheck disable=SC2086
CURL_OPTS_LINE="$(printf '%s ' $CURL_OPTS $CURL_CROSS)CFLAGS=$CURL_CFLAGS AR=gcc-ar; cc=$TOOLCHAIN_ID"
if [ -f "$PREFIX/lib/libcurl.a" ] && [ -f "$PREFIX/lib/pkgconfig/libcurl.pc" ] &&
	[ "$(cat "$CURL_STAMP" 2>/dev/null)" = "$CURL_OPTS_LINE" ]; then
	log "libcurl: $PREFIX/lib/libcurl.a exists, skipping"
else
	[ ! -f "$PREFIX/lib/libcurl.a" ] || log "libcurl: configure options changed, rebuilding"
	rm -f "$PREFIX/lib/libcurl.a" "$CURL_STAMP"
	fetch_source curl
	CURL_DIR=$(unpack_source curl)
	log "libcurl: configuring $(basename "$CURL_DIR") (HTTP only, no TLS) with $CC_NAME"
	# Configure in a separate directory; the patched tree's shipped configure is
	# used as is (no autoreconf).
	rm -rf "$DEPS/build-curl"
	mkdir -p "$DEPS/build-curl"
	(
		cd "$DEPS/build-curl"
		# shellcheck disable=SC2086
		CC=$CC CFLAGS="$CURL_CFLAGS" AR="$GCC_AR" RANLIB="$GCC_RANLIB" NM="$GCC_NM" \
			CPPFLAGS='' LDFLAGS='' LIBS='' PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" PKG_CONFIG_PATH='' \
			"$CURL_DIR/configure" --prefix="$PREFIX" --libdir="$PREFIX/lib" $CURL_OPTS $CURL_CROSS
	) >"$DEPS/curl-configure.log" 2>&1 ||
		{ tail -n 40 "$DEPS/curl-configure.log" >&2; die "libcurl: configure failed (log: $DEPS/curl-configure.log)"; }
	log "libcurl: building lib/ (no curl tool, tests or docs)"
	(
		cd "$DEPS/build-curl"
		make -j "$JOBS" -C lib &&
			make -C lib install &&
			make -C include install &&
			make install-pkgconfigDATA install-binSCRIPTS
	) >"$DEPS/curl-build.log" 2>&1 ||
		{ tail -n 40 "$DEPS/curl-build.log" >&2; die "libcurl: build failed (log: $DEPS/curl-build.log)"; }
	[ -f "$PREFIX/lib/libcurl.a" ] || die "libcurl: libcurl.a was not installed into $PREFIX/lib"
	[ -f "$PREFIX/lib/pkgconfig/libcurl.pc" ] || die "libcurl: libcurl.pc was not installed"
	printf '%s\n' "$CURL_OPTS_LINE" >"$CURL_STAMP"
fi

if [ "$DEPS_ONLY" = 1 ]; then
	log "deps ready in $PREFIX ($(($(date +%s) - START))s)"
	exit 0
fi

# --- 5. resil-init ---------------------------------------------------------
# Debian's curl-config drops -I/-L for a custom prefix: ask pkg-config, and only
# the private prefix (never the host's glibc libraries).
PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig
PKG_CONFIG_PATH=
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH
PKG_CFLAGS=$(pkg-config --static --cflags libcurl libcjson) || die "pkg-config --cflags libcurl libcjson failed"
PKG_LIBS=$(pkg-config --static --libs libcurl libcjson) || die "pkg-config --libs libcurl libcjson failed"

[ -f VERSION ] || die "VERSION file missing in $ROOT"
VERSION=$(cat VERSION)
SRCS=$(ls src/*.c 2>/dev/null) || true
[ -n "$SRCS" ] || die "no src/*.c to build in $ROOT"

# Implicit declarations (e.g. a GNU function used without _GNU_SOURCE, which
# musl hides like glibc) truncate pointers on 64-bit: make them hard errors.
CFLAGS_STATIC="-std=gnu11 $SIZE_CFLAGS $ARCH_CFLAGS -Wall -Wextra
	-Werror=implicit-function-declaration -Werror=int-conversion
	-Werror=incompatible-pointer-types ${EXTRA_CFLAGS:-}"
log "resil-init $VERSION ($ARCH): compiling $(echo "$SRCS" | wc -w | tr -d ' ') files with $CC_NAME"
rm -rf "$OBJ"
mkdir -p "$OBJ"
objs=
failed=
for src in $SRCS; do
	obj=$OBJ/$(basename "$src" .c).o
	# shellcheck disable=SC2086
	if ! "$CC" $CFLAGS_STATIC -Iinclude $PKG_CFLAGS -DRESIL_VERSION="\"$VERSION\"" \
		-c "$src" -o "$obj"; then
		failed="$failed $src"
	fi
	objs="$objs $obj"
done
[ -z "$failed" ] || die "compiling with $CC_NAME failed for:$failed"

log "linking $OUT (link-time optimisation over resil-init, libcurl and cJSON)"
# The code is generated here, so the compile flags come again; one LTO
# partition optimises the whole program at once (smaller, and deterministic).
# shellcheck disable=SC2086
"$CC" -static $SIZE_CFLAGS $ARCH_CFLAGS -flto-partition=one ${EXTRA_CFLAGS:-} -Wl,--gc-sections $ARCH_LDFLAGS \
	-o "$OUT.tmp" $objs $PKG_LIBS ||
	die "static link failed"
# symbols, and the compilers' .comment notes
mkdir -p "$(dirname "$OUT")"
"$STRIP" --strip-all -R .comment "$OUT.tmp" || die "strip $OUT.tmp failed"
mv -f "$OUT.tmp" "$OUT"

# --- 6. check --------------------------------------------------------------
if command -v file >/dev/null 2>&1; then
	desc=$(file -b "$OUT")
	case $desc in
	*"statically linked"* | *"static-pie linked"*) ;;
	*) die "$OUT is not statically linked: $desc" ;;
	esac
	case $desc in
	*"$FILE_ARCH"*) ;;
	*) die "$OUT is not an $ARCH ($FILE_ARCH) binary: $desc" ;;
	esac
fi
# runs here natively, or under qemu-user when it is installed
if [ "$ARCH" = "$HOST_ARCH" ]; then
	runner=
else
	runner=$(command -v "qemu-${GNU_TRIPLET%%-*}-static" 2>/dev/null) || runner=
fi
if [ "$ARCH" = "$HOST_ARCH" ] || [ -n "$runner" ]; then
	$runner "$OUT" --version >/dev/null || die "$OUT --version failed${runner:+ (under $runner)}"
fi
size=$(wc -c <"$OUT" | tr -d ' ')
log "done: $OUT ($size bytes) in $(($(date +%s) - START))s"
