#!/bin/sh
# Build build/resil-init-static: a fully static musl binary of resil-init.
#
# libcurl and cJSON are built from Debian's *source* packages (with Debian's
# patches applied by dpkg-source) into a private prefix under build/deps/, so
# the result carries the same security fixes as the distribution's libraries.
#
# Used by `make static` and by the Dockerfile's build stage, so what CI tests is
# exactly what the image ships.  Steps whose output already exists are skipped;
# delete build/deps/ to start over.
#
# Usage: sh scripts/build-static.sh [--deps-only]
#   --deps-only      only build libcurl and cJSON into build/deps/prefix (the
#                    Dockerfile uses it so the deps get their own cached layer)
# Environment:
#   EXTRA_CFLAGS     added to the compile flags of src/*.c
#   JOBS             parallel make jobs (default: number of CPUs)
#   RESIL_DEPS_DIR   where deps are built (default: <repo>/build/deps)
#   RESIL_NO_APT=1   never call apt-get (fail instead when something is missing)
set -eu

log() { printf '==> build-static: %s\n' "$*" >&2; }
die() {
	printf 'build-static: error: %s\n' "$*" >&2
	exit 1
}

DEPS_ONLY=0
for arg in "$@"; do
	case $arg in
	--deps-only) DEPS_ONLY=1 ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument: $arg (try --help)" ;;
	esac
done

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"

DEPS=${RESIL_DEPS_DIR:-$ROOT/build/deps}
case $DEPS in /*) ;; *) DEPS=$ROOT/$DEPS ;; esac
SRC=$DEPS/src
PREFIX=$DEPS/prefix
OUT=$ROOT/build/resil-init-static
OBJ=$ROOT/build/static-obj
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

# --- 2. tools --------------------------------------------------------------
# command -> Debian package that provides it
TOOLS='musl-gcc:musl-tools gcc:gcc gcc-ar:gcc gcc-ranlib:gcc gcc-nm:gcc make:make
cmake:cmake pkg-config:pkg-config dpkg-source:dpkg-dev apt-get:apt patch:patch
xz:xz-utils ar:binutils strip:binutils file:file'
missing_pkgs=
for pair in $TOOLS; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing_pkgs="$missing_pkgs $pkg"
done
# musl's own headers and libc.a (musl-tools depends on musl-dev; be sure)
have_musl_dev=
for h in /usr/include/*-linux-musl*/stdio.h /usr/lib/musl/include/stdio.h; do
	[ -f "$h" ] && have_musl_dev=1
done
[ -n "$have_musl_dev" ] || missing_pkgs="$missing_pkgs musl-dev"

APT_UPDATED=
apt_update() {
	[ -n "$APT_UPDATED" ] && return 0
	log "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
		die "apt-get update failed"
	APT_UPDATED=1
}

NEED_SOURCES=1
[ -f "$PREFIX/lib/libcurl.a" ] && [ -f "$PREFIX/lib/libcjson.a" ] && NEED_SOURCES=0

if [ -n "$missing_pkgs" ]; then
	if is_root && [ "${RESIL_NO_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing missing build tools:$missing_pkgs"
		# one apt-get update for both the tools and the source packages
		[ "$NEED_SOURCES" = 0 ] || have_deb_src || add_deb_src
		apt_update
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$missing_pkgs >/dev/null || die "apt-get install$missing_pkgs failed"
	else
		die "missing build tools; as root run: apt-get update && apt-get install -y$missing_pkgs"
	fi
fi

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
	if ! apt_source "$1"; then
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
# The linker keeps its defaults (-z separate-code, -z relro): no executable
# headers or read-only data.
SIZE_CFLAGS='-Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables -flto'
GCC_AR=$(command -v gcc-ar) || die "gcc-ar not found"
GCC_RANLIB=$(command -v gcc-ranlib) || die "gcc-ranlib not found"
GCC_NM=$(command -v gcc-nm) || die "gcc-nm not found"
# LTO bytecode is only readable by the compiler that wrote it
TOOLCHAIN_ID=$(musl-gcc --version 2>/dev/null | head -n 1)
[ -n "$TOOLCHAIN_ID" ] || die "musl-gcc --version failed"

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
	log "cJSON: building $(basename "$CJSON_DIR") with musl-gcc"
	rm -rf "$DEPS/build-cjson"
	cmake -S "$CJSON_DIR" -B "$DEPS/build-cjson" \
		-DCMAKE_C_COMPILER=musl-gcc \
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
# Proxy support stays in: src/health.c sets CURLOPT_PROXY "" and
# CURLOPT_NOPROXY "*" (so proxy variables are ignored) and treats a refused
# option as fatal; without proxy support curl would refuse both.
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
	--enable-ipv6 --enable-proxy --enable-http-auth
	--disable-verbose --disable-dateparse --disable-headers-api --disable-socketpair
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
CURL_OPTS_LINE="$(printf '%s ' $CURL_OPTS)CFLAGS=$CURL_CFLAGS AR=gcc-ar; cc=$TOOLCHAIN_ID"
if [ -f "$PREFIX/lib/libcurl.a" ] && [ -f "$PREFIX/lib/pkgconfig/libcurl.pc" ] &&
	[ "$(cat "$CURL_STAMP" 2>/dev/null)" = "$CURL_OPTS_LINE" ]; then
	log "libcurl: $PREFIX/lib/libcurl.a exists, skipping"
else
	[ ! -f "$PREFIX/lib/libcurl.a" ] || log "libcurl: configure options changed, rebuilding"
	rm -f "$PREFIX/lib/libcurl.a" "$CURL_STAMP"
	fetch_source curl
	CURL_DIR=$(unpack_source curl)
	log "libcurl: configuring $(basename "$CURL_DIR") (HTTP only, no TLS) with musl-gcc"
	# Configure in a separate directory; the patched tree's shipped configure is
	# used as is (no autoreconf).
	rm -rf "$DEPS/build-curl"
	mkdir -p "$DEPS/build-curl"
	(
		cd "$DEPS/build-curl"
		# shellcheck disable=SC2086
		CC=musl-gcc CFLAGS="$CURL_CFLAGS" AR="$GCC_AR" RANLIB="$GCC_RANLIB" NM="$GCC_NM" \
			CPPFLAGS='' LDFLAGS='' LIBS='' PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" PKG_CONFIG_PATH='' \
			"$CURL_DIR/configure" --prefix="$PREFIX" --libdir="$PREFIX/lib" $CURL_OPTS
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
CFLAGS_STATIC="-std=gnu11 $SIZE_CFLAGS -Wall -Wextra
	-Werror=implicit-function-declaration -Werror=int-conversion
	-Werror=incompatible-pointer-types ${EXTRA_CFLAGS:-}"
log "resil-init $VERSION: compiling $(echo "$SRCS" | wc -w | tr -d ' ') files with musl-gcc"
rm -rf "$OBJ"
mkdir -p "$OBJ"
objs=
failed=
for src in $SRCS; do
	obj=$OBJ/$(basename "$src" .c).o
	# shellcheck disable=SC2086
	if ! musl-gcc $CFLAGS_STATIC -Iinclude $PKG_CFLAGS -DRESIL_VERSION="\"$VERSION\"" \
		-c "$src" -o "$obj"; then
		failed="$failed $src"
	fi
	objs="$objs $obj"
done
[ -z "$failed" ] || die "compiling with musl-gcc failed for:$failed"

log "linking $OUT (link-time optimisation over resil-init, libcurl and cJSON)"
# The code is generated here, so the compile flags come again; one LTO
# partition optimises the whole program at once (smaller, and deterministic).
# shellcheck disable=SC2086
musl-gcc -static $SIZE_CFLAGS -flto-partition=one ${EXTRA_CFLAGS:-} -Wl,--gc-sections \
	-o "$OUT.tmp" $objs $PKG_LIBS ||
	die "static link failed"
# symbols, and the compilers' .comment notes
strip --strip-all -R .comment "$OUT.tmp" || die "strip $OUT.tmp failed"
mv -f "$OUT.tmp" "$OUT"

# --- 6. check --------------------------------------------------------------
if command -v file >/dev/null 2>&1; then
	desc=$(file -b "$OUT")
	case $desc in
	*"statically linked"* | *"static-pie linked"*) ;;
	*) die "$OUT is not statically linked: $desc" ;;
	esac
fi
size=$(wc -c <"$OUT" | tr -d ' ')
log "done: $OUT ($size bytes) in $(($(date +%s) - START))s"
