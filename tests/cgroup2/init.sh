#!/bin/sh
# /init of the cgroup v2 test VM: tests/cgroup2/run.sh packs it into a busybox
# initramfs with resil-init-static, memhog and nscg, and boots it under qemu.
#
# It mounts what a container's init finds (proc, sysfs, devtmpfs, tmpfs on /tmp
# and /run, cgroup2 on /sys/fs/cgroup), enables the memory controller for the
# children of the root cgroup, then runs every scenario named in
# /scen/scenarios.list (functions sc_<name> of /scen/scenarios.sh) in a
# subshell, each in cgroups of its own, and prints one line per scenario on
# the serial console:
#     SCENARIO <name> PASS <detail>
#     SCENARIO <name> FAIL <what went wrong; ...>
# then CGROUP2-DONE and powers off. The host side reads those lines.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup

CG=/sys/fs/cgroup
MiB=1048576

echo "CGROUP2-KERNEL $(uname -r) $(cat /proc/cmdline)"
if ! echo +memory >"$CG/cgroup.subtree_control"; then
	echo "CGROUP2-SETUP FAIL cannot enable the memory controller"
fi

# --- helpers for scenarios -------------------------------------------------
# Each scenario runs in a subshell with S=/tmp/<name> (its scratch directory);
# failed checks are collected in $S/fails, the PASS detail in $S/detail.

note() { printf '  %s\n' "$*"; }
detail() { printf '%s ' "$*" >>"$S/detail"; }
failed() {
	note "FAILED: $*"
	printf '%s; ' "$*" >>"$S/fails"
}

# check DESCRIPTION COMMAND...: COMMAND must succeed
check() {
	desc=$1
	shift
	"$@" || failed "$desc"
}

# expect DESCRIPTION GOT WANT
expect() {
	[ "$2" = "$3" ] || failed "$1: got '$2', want '$3'"
}

# expect_between DESCRIPTION GOT LOW HIGH (integers)
expect_between() {
	case $2 in '' | *[!0-9]*)
		failed "$1: got '$2', want a number in [$3, $4]"
		return
		;;
	esac
	if [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
		failed "$1: got $2, want [$3, $4]"
	fi
}

# no_warnings FILE: resil-init's stderr at the default level has no warn/error line
no_warnings() {
	if grep -E '^resil-init\[[0-9]+\]: (warn|error):' "$1" >"$S/warnings"; then
		failed "warnings on stderr: $(head -n 3 "$S/warnings" | tr '\n' ' ')"
	fi
}

# has FILE PATTERN DESCRIPTION: an extended regexp must match a line of FILE
has() {
	grep -Eq -- "$2" "$1" || failed "$3 (no /$2/ in $(basename "$1"))"
}

# hasnt FILE PATTERN DESCRIPTION
hasnt() {
	! grep -Eq -- "$2" "$1" || failed "$3 (/$2/ in $(basename "$1"))"
}

# line_of FILE PATTERN: number of the first line matching, or 0
line_of() {
	n=$(grep -En -m 1 -- "$2" "$1" | cut -d: -f1)
	echo "${n:-0}"
}

# app_value FILE RUN KEY: what the app's run RUN (RESIL_RESTART_COUNT) printed
# for KEY with /scen/report-env.sh ("APP <run> KEY=VALUE"); "<unset>" when the
# variable was not in its environment, "<none>" when that line is missing
app_value() {
	line=$(grep -E -m 1 "^APP $2 $3(=|$)" "$1")
	case $line in
	'') echo '<none>' ;;
	*=*) echo "${line#*=}" ;;
	*) echo '<unset>' ;;
	esac
}

# json_value FILE KEY: a scalar of resil-init's status.json (compact JSON)
json_value() {
	sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1" | tr -d '"'
}

# keyed FILE KEY: the value of a "key value" line of a cgroup file
keyed() {
	sed -n "s/^$2 \([0-9]*\)\$/\1/p" "$1"
}

# new_cgroup PATH [FILE=VALUE ...]: makes $CG/PATH (parents too) and writes
# the files; prints the directory
new_cgroup() {
	dir=$CG/$1
	shift
	mkdir -p "$dir" || return 1
	for kv in "$@"; do
		echo "${kv#*=}" >"$dir/${kv%%=*}" || return 1
	done
	echo "$dir"
}

# enable_memory DIR: lets DIR's children have memory limits
enable_memory() {
	echo +memory >"$1/cgroup.subtree_control"
}

# in_cgroup DIR COMMAND...: runs COMMAND inside DIR (and nothing else there)
in_cgroup() {
	# shellcheck disable=SC2016 # $$ is the inner shell's
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$@"
}

# run_resil NAME DIR [resil-init args...]: resil-init in DIR (DIR "" = where
# /init is, the root cgroup), started through $RUN_IN when set (e.g. nscg),
# stdout to $S/NAME.out, stderr to $S/NAME.err, killed after 60 s; prints the
# exit status
run_resil() {
	name=$1 dir=$2
	shift 2
	# shellcheck disable=SC2086,SC2016 # RUN_IN is a command and its options
	if [ -n "$dir" ]; then
		timeout 60 sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$dir" \
			${RUN_IN:-} resil-init "$@" >"$S/$name.out" 2>"$S/$name.err" </dev/null
	else
		timeout 60 ${RUN_IN:-} resil-init "$@" >"$S/$name.out" 2>"$S/$name.err" </dev/null
	fi
	rc=$?
	echo "$rc"
}

# show FILE...: the files on the console, for the log
show() {
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "  --- $(basename "$f")"
		sed 's/^/  | /' "$f"
	done
}

# wait_for FILE PATTERN SECONDS
wait_for() {
	i=0
	while ! grep -Eq -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}

# Kills whatever a scenario left in its cgroups and removes them, deepest first
# (a cgroup whose last task is still exiting refuses rmdir for a moment).
cleanup_cgroups() {
	for dir in $(find "$CG" -mindepth 1 -type d | sort -r); do
		[ -e "$dir/cgroup.kill" ] && echo 1 >"$dir/cgroup.kill"
		i=0
		while ! rmdir "$dir" 2>/dev/null; do
			i=$((i + 1))
			if [ "$i" -gt 50 ]; then
				echo "  cannot remove $dir: $(tr '\n' ' ' <"$dir/cgroup.events") procs: $(tr '\n' ' ' <"$dir/cgroup.procs")"
				break
			fi
			sleep 0.1
		done
	done
}

run_scenario() {
	S=/tmp/$1
	mkdir -p "$S"
	: >"$S/fails"
	: >"$S/detail"
	echo "=== scenario $1"
	start=$(cut -d' ' -f1 /proc/uptime)
	fn=sc_$(echo "$1" | tr - _)
	("$fn")
	status=$?
	[ "$status" = 0 ] || failed "scenario script exited with status $status"
	cleanup_cgroups
	end=$(cut -d' ' -f1 /proc/uptime)
	took=$(awk "BEGIN { printf \"%.1fs\", $end - $start }")
	if [ -s "$S/fails" ]; then
		echo "SCENARIO $1 FAIL ($took) $(cat "$S/fails")"
	else
		echo "SCENARIO $1 PASS ($took) $(cat "$S/detail")"
	fi
}

. /scen/scenarios.sh

while read -r name _; do
	case $name in '' | '#'*) continue ;; esac
	run_scenario "$name"
done </scen/scenarios.list
echo CGROUP2-DONE
poweroff -f
