#!/bin/sh
# shellcheck disable=SC2086,SC2069 # package lists split on purpose; apt: its stderr shown, its stdout not
# Make sure the Debian packages a make target needs are installed.
#
# The Makefile runs this before `make`, `make demo`, `make test` & co., so the
# README's two commands work on a fresh Debian machine; CI (.ci/run) runs it
# with the target `ci`. When everything is there it costs one dpkg-query.
# When something is missing:
#   as root:  apt-get update (only when APT does not know a package yet),
#             then apt-get install -y --no-install-recommends <exactly those>;
#   otherwise: prints the one command to run and exits 1.
#
# Usage: sh scripts/deps.sh [--dry-run] [--list] TARGET...
#   build         compile build/resil-init (`make`)
#   test          the unit and integration suites (`make test`), with build
#   demo          `make demo`, with build
#   lint          `make lint` / `make format`, with build
#   fuzz          `make fuzz`: clang and its libFuzzer runtime, with build
#   static        `make static` (musl, cmake, dpkg-source for Debian's sources)
#   static-arm64  `make static ARCH=arm64`: static plus, on another machine
#                 than arm64, the aarch64 cross compiler and musl-dev:arm64
#                 (adds dpkg's arm64 architecture); static-amd64 likewise
#   test-arm64    `make test-arm64`: static-arm64, test and qemu-user-static
#   bench         `make bench`: the inits it compares against, and curl
#   ci            everything .ci/run runs
#   --dry-run     say what would be run, run nothing (exit 1 if something is missing)
#   --list        print the packages TARGET... need, one a line, and exit
# Environment:
#   RESIL_NO_APT=1   never call apt-get or dpkg --add-architecture: print the
#                    command instead, as for a user who is not root
#   RESIL_SKIP_DEPS=1  (read by the Makefile) do not run this script at all
set -eu

# --- what each target needs (Debian package names) --------------------------
# gcc's Recommends (libc6-dev) are not installed with --no-install-recommends.
pkgs_build='gcc libc6-dev make pkg-config libcurl4-openssl-dev libcjson-dev'
# groff-base: test_docs renders the man page
pkgs_test='libcmocka-dev python3 python3-pytest python3-yaml python3-prometheus-client
	util-linux procps iproute2 file strace groff-base'
pkgs_demo='python3 util-linux'
pkgs_lint='clang-format clang-tidy cppcheck'
# -fsanitize=fuzzer links libclang_rt.fuzzer, which is in libclang-rt-14-dev
pkgs_fuzz='clang libclang-rt-14-dev'
# build-static.sh: musl-gcc, gcc-ar & co., cmake for cJSON, dpkg-source (and
# its patch, xz) to unpack Debian's source packages, strip, file
pkgs_static='gcc make musl-tools musl-dev cmake pkg-config dpkg-dev patch xz-utils binutils file'
pkgs_qemu='qemu-user-static'
pkgs_bench='tini dumb-init curl strace'
pkgs_ci='tini dumb-init ca-certificates'

DRY_RUN=0
LIST=0
targets=
for arg in "$@"; do
	case $arg in
	--dry-run) DRY_RUN=1 ;;
	--list) LIST=1 ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "deps: unknown option $arg (try --help)" >&2
		exit 2
		;;
	*) targets="$targets $arg" ;;
	esac
done
[ -n "$targets" ] || targets=build

# This machine's architecture, asked only by the targets that cross-compile
# (make, make test & co. cost one dpkg-query in all).
native=
native_arch() {
	[ -n "$native" ] || native=$(dpkg --print-architecture 2>/dev/null) || native=unknown
}
# $1 = Debian architecture: its cross compiler and musl, unless it is this one
cross() {
	[ "$1" != "$native" ] || return 0
	case $1 in
	amd64) echo gcc-x86-64-linux-gnu binutils-x86-64-linux-gnu musl-dev:amd64 ;;
	arm64) echo gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu musl-dev:arm64 ;;
	esac
}
# $1 = Debian architecture: what runs its binaries here
emulator() { [ "$1" = "$native" ] || echo "$pkgs_qemu"; }

wanted=
want() { wanted="$wanted $*"; }
for t in $targets; do
	case $t in
	build) want "$pkgs_build" ;;
	test) want "$pkgs_build" "$pkgs_test" ;;
	demo) want "$pkgs_build" "$pkgs_demo" ;;
	lint) want "$pkgs_build" "$pkgs_lint" ;;
	fuzz) want "$pkgs_build" "$pkgs_fuzz" ;;
	static) want "$pkgs_static" ;;
	static-amd64 | static-arm64)
		native_arch
		want "$pkgs_static" "$(cross "${t#static-}")"
		;;
	test-arm64)
		native_arch
		want "$pkgs_build" "$pkgs_static" "$(cross arm64)" "$(emulator arm64)" "$pkgs_test"
		;;
	bench) want "$pkgs_build" "$pkgs_static" "$pkgs_bench" ;;
	ci)
		native_arch
		want "$pkgs_build" "$pkgs_test" "$pkgs_demo" "$pkgs_lint" "$pkgs_fuzz" "$pkgs_static" \
			"$(cross arm64)" "$(emulator arm64)" "$pkgs_ci"
		;;
	*)
		echo "deps: unknown target '$t' (build test demo lint fuzz static static-arm64 test-arm64 bench ci)" >&2
		exit 2
		;;
	esac
done
# one of each, in the order first named
unique=' '
for p in $wanted; do
	case $unique in *" $p "*) ;; *) unique="$unique$p " ;; esac
done
wanted=$unique

if [ "$LIST" = 1 ]; then
	printf '%s\n' $wanted
	exit 0
fi

# --- without dpkg: check the build's own needs by their commands -------------
if ! command -v dpkg-query >/dev/null 2>&1; then
	command -v "${CC:-cc}" >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 &&
		pkg-config --exists libcurl libcjson && exit 0
	echo "deps: not a Debian system and no cc, pkg-config, libcurl or libcjson found: install your" \
		"system's equivalents of:" $wanted "(then RESIL_SKIP_DEPS=1 make ... skips this check)" >&2
	exit 1
fi

# --- what is missing: one dpkg-query for all ---------------------------------
# dpkg itself is always installed, and for this machine's architecture
installed=' '
while read -r pkg status; do
	[ "$status" = installed ] || continue
	installed="$installed$pkg "
	case $pkg in dpkg:*) native=${pkg#dpkg:} ;; esac
done <<EOF
$(dpkg-query -W -f='${Package}:${Architecture} ${db:Status-Status}\n' dpkg $wanted 2>/dev/null)
EOF
missing=
for p in $wanted; do
	case $p in
	*:*) forms=$p ;;
	*) forms="$p:$native $p:all" ;;
	esac
	found=
	for f in $forms; do
		case $installed in *" $f "*) found=1 ;; esac
	done
	[ -n "$found" ] || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

# foreign architectures the missing packages need (musl-dev:arm64)
add_arch=
for p in $missing; do
	case $p in
	*:*)
		a=${p#*:}
		[ "$a" = "$native" ] || dpkg --print-foreign-architectures | grep -qx "$a" ||
			case " $add_arch " in *" $a "*) ;; *) add_arch="$add_arch $a" ;; esac
		;;
	esac
done

install_cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ] || [ "${RESIL_NO_APT:-0}" = 1 ] || [ "$DRY_RUN" = 1 ]; then
	sudo=
	[ "$(id -u)" = 0 ] || sudo='sudo '
	cmd=
	for a in $add_arch; do cmd="$cmd${sudo}dpkg --add-architecture $a && "; done
	[ -z "$add_arch" ] || cmd="$cmd${sudo}apt-get update && "
	cmd="$cmd$sudo$install_cmd"
	what="missing packages for '${targets# }':$missing"
	if [ "$DRY_RUN" = 1 ]; then
		echo "deps: $what; would run: $cmd" >&2
	else
		echo "deps: $what; run: $cmd" >&2
	fi
	exit 1
fi

# --- root: install exactly what is missing ------------------------------------
export DEBIAN_FRONTEND=noninteractive
# several builds may share a machine: wait for another apt-get rather than fail
APT='apt-get -o DPkg::Lock::Timeout=600'
need_update=
for a in $add_arch; do
	echo "deps: dpkg --add-architecture $a"
	dpkg --add-architecture "$a"
	need_update=1
done
if [ -z "$need_update" ]; then
	for p in $missing; do
		apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || {
			need_update=1
			break
		}
	done
fi
if [ -n "$need_update" ]; then
	echo "deps: apt-get update"
	$APT update -qq 2>&1 >/dev/null || {
		echo "deps: apt-get update failed" >&2
		exit 1
	}
fi
echo "deps: $install_cmd"
if ! $APT install -y -qq --no-install-recommends $missing 2>&1 >/dev/null; then
	# package lists older than the archive (files gone): once more, refreshed
	[ -n "$need_update" ] || {
		echo "deps: apt-get update (the install failed with the current lists)"
		$APT update -qq 2>&1 >/dev/null &&
			$APT install -y -qq --no-install-recommends $missing 2>&1 >/dev/null
	} || {
		echo "deps: $install_cmd failed" >&2
		exit 1
	}
fi
