# The scenarios of the cgroup v2 test VM, sourced by /init (tests/cgroup2/init.sh,
# which has the helpers: check, expect, has, run_resil, ...). Each sc_<name>
# runs in a subshell with S=/tmp/<name>; the list and order are in
# scenarios.list. resil-init runs as a child of /init here, not as PID 1: what
# is tested is its view of the cgroups, which is the same.

REPORT=/scen/report-env.sh
ENV_VARS='RESIL_MEMORY_LIMIT_MB RESIL_MEMORY_TIER RESIL_EMERGENCY RESIL_RESTART_REASON EMERGENCY_MODE NODE_OPTIONS GOMEMLIMIT'

# status_app: an app command that reports its environment, then saves
# `resil-init status` into $S/status.json (the supervisor's view while it
# runs). resil-init first writes status.json just after it has started the
# app, so the app waits for it.
status_app() {
	state=/run/$(basename "$S")
	echo "$REPORT $ENV_VARS; i=0; while [ ! -s $state/status.json ] && [ \$i -lt 50 ]; do" \
		"sleep 0.1; i=\$((i + 1)); done; resil-init status --state-dir $state >$S/status.json"
}

# start_holder DIR MIB: a process holding MIB MiB in DIR, so the working set
# is known; waits until it holds it and sets $holder to its pid. (Not run in
# $(...): the substitution would wait for the holder's end.)
start_holder() {
	in_cgroup "$1" memhog "$2" "$2" 0 0 >"$S/holder.out" 2>&1 &
	holder=$!
	wait_for "$S/holder.out" "holding $2 MiB" 20 || failed "holder did not allocate $2 MiB"
}

# the holder is this subshell's child: reaped here, or its cgroup stays busy
stop_holder() {
	kill "$holder"
	wait "$holder"
}

# check_sample DIR LIMIT_MIB HOLD_MIB: status.json's memory section against the
# kernel's own numbers for DIR, read right after
check_sample() {
	status=$S/status.json
	expect "status.json memory.limit_bytes" "$(json_value "$status" limit_bytes)" $(($2 * MiB))
	ws=$(json_value "$status" working_set_bytes)
	# the kernel's working set of the cgroup now; resil-init's sample is from
	# its start, before the app's shell and `status` ran: within 4 MiB
	current=$(cat "$1/memory.current")
	inactive=$(keyed "$1/memory.stat" inactive_file)
	kernel_ws=$((current - inactive))
	expect_between "status.json memory.working_set_bytes vs kernel $kernel_ws" "$ws" \
		$((kernel_ws - 4 * MiB)) $((kernel_ws + 4 * MiB))
	expect_between "status.json working set holds the holder's $3 MiB" "$ws" $(($3 * MiB)) $((($3 + 8) * MiB))
	detail "limit=$(($2))MiB ws=$((ws / 1024))KiB kernel_ws=$((kernel_ws / 1024))KiB"
}

# limit_run DIR LIMIT_MIB HOLD_MIB: resil-init (through $RUN_IN, if set) in DIR
# beside a holder of HOLD_MIB; what it read is checked against the kernel's
limit_run() {
	start_holder "$1" "$3"
	rc=$(run_resil r "$1" --state-dir "/run/$(basename "$S")" -- sh -c "$(status_app)")
	check_sample "$1" "$2" "$3"
	stop_holder
	show "$S/r.err" "$S/r.out" "$S/status.json"
	expect "exit status" "$rc" 0
	expect "RESIL_MEMORY_LIMIT_MB" "$(app_value "$S/r.out" 0 RESIL_MEMORY_LIMIT_MB)" "$2"
	no_warnings "$S/r.err"
}

sc_child_limit() {
	limit_run "$(new_cgroup child-limit memory.max=64M)" 64 24
	expect "RESIL_MEMORY_TIER (24 of 64 MiB)" "$(app_value "$S/r.out" 0 RESIL_MEMORY_TIER)" normal
	expect "status.json tier" "$(json_value "$S/status.json" tier)" normal
}

sc_nested_limit() {
	parent=$(new_cgroup nested memory.max=48M)
	enable_memory "$parent"
	dir=$(new_cgroup nested/app)
	expect "the child's own memory.max" "$(cat "$dir/memory.max")" max
	limit_run "$dir" 48 16
}

# /init itself is in the root cgroup: there is no memory.max or memory.current.
sc_v2_root() {
	check "the root cgroup has no memory.current (as on every v2 machine)" \
		[ ! -e "$CG/memory.current" ]
	rc=$(run_resil r "" --state-dir /run/v2-root -- sh -c "$(status_app)")
	show "$S/r.err" "$S/r.out" "$S/status.json"
	expect "exit status" "$rc" 0
	no_warnings "$S/r.err"
	expect "RESIL_MEMORY_LIMIT_MB (no limit)" "$(app_value "$S/r.out" 0 RESIL_MEMORY_LIMIT_MB)" ""
	expect "status.json memory.limit_bytes" "$(json_value "$S/status.json" limit_bytes)" null
	ws=$(json_value "$S/status.json" working_set_bytes)
	expect_between "status.json working set (the machine's, of 512 MiB)" "$ws" $((1 * MiB)) $((512 * MiB))
	detail "ws=$((ws / 1024))KiB"
}

# cgns MODE: resil-init at the root of a new cgroup namespace made inside a
# cgroup with memory.max=64M, with nscg MODE ("" or --remount)
cgns() {
	dir=$(new_cgroup "$(basename "$S")" memory.max=64M)
	# shellcheck disable=SC2086 # $1 is an option or nothing
	in_cgroup "$dir" nscg $1 sh -c 'cat /proc/self/cgroup; grep cgroup2 /proc/self/mountinfo' >"$S/view" 2>&1
	show "$S/view"
	has "$S/view" '^0::/$' "/proc/self/cgroup inside the namespace is 0::/"
	RUN_IN="nscg $1" limit_run "$dir" 64 16
}

sc_cgns_remount() {
	cgns --remount
	has "$S/view" ' / /sys/fs/cgroup .* - cgroup2 ' "the namespace's own cgroup2 mount, root /"
}

sc_cgns_unshare() {
	cgns ""
	has "$S/view" ' /\.\. /sys/fs/cgroup .* - cgroup2 ' "the host's cgroup2 mount, root /.."
}

sc_oom_emergency() {
	dir=$(new_cgroup oom memory.max=32M)
	app="if [ \"\$RESIL_EMERGENCY\" = 1 ]; then $REPORT $ENV_VARS; else exec memhog 256 4 10 0; fi"
	rc=$(run_resil r "$dir" --restart on-failure --backoff 100ms --state-dir /run/oom -- sh -c "$app")
	show "$S/r.err" "$S/r.out"
	kills=$(keyed "$dir/memory.events" oom_kill)
	expect_between "memory.events oom_kill" "$kills" 1 1000
	expect "exit status" "$rc" 0
	has "$S/r.err" 'OOM-killed' "resil-init logs the OOM kill"
	expect "RESIL_RESTART_REASON" "$(app_value "$S/r.out" 1 RESIL_RESTART_REASON)" oom
	expect "RESIL_EMERGENCY" "$(app_value "$S/r.out" 1 RESIL_EMERGENCY)" 1
	expect "EMERGENCY_MODE" "$(app_value "$S/r.out" 1 EMERGENCY_MODE)" true
	expect "RESIL_MEMORY_LIMIT_MB" "$(app_value "$S/r.out" 1 RESIL_MEMORY_LIMIT_MB)" 32
	detail "oom_kill=$kills"
}

sc_memory_restart() {
	dir=$(new_cgroup memrestart memory.max=128M)
	app="if [ \"\$RESIL_RESTART_COUNT\" = 0 ]; then exec memhog 48 8 0 0; else $REPORT $ENV_VARS; fi"
	rc=$(run_resil r "$dir" --memory-restart 32M --memory-restart-for 1s --memory-interval 250ms \
		--restart on-failure --backoff 100ms --state-dir /run/memrestart -- sh -c "$app")
	show "$S/r.err" "$S/r.out"
	expect "exit status" "$rc" 0
	has "$S/r.err" 'working set [0-9]+ MiB stayed at or above --memory-restart for 1s' \
		"resil-init logs the memory restart"
	has "$S/r.out" 'memhog: got SIGTERM' "the hog was stopped gracefully"
	expect "RESIL_RESTART_REASON" "$(app_value "$S/r.out" 1 RESIL_RESTART_REASON)" memory
	expect "RESIL_EMERGENCY" "$(app_value "$S/r.out" 1 RESIL_EMERGENCY)" 1
	expect "oom_kill (none)" "$(keyed "$dir/memory.events" oom_kill)" 0
}

sc_runtime_hints() {
	dir=$(new_cgroup hints memory.max=200M)
	rc=$(run_resil r "$dir" --runtime-hints --state-dir /run/hints -- $REPORT NODE_OPTIONS GOMEMLIMIT)
	rc2=$(NODE_OPTIONS=--enable-source-maps GOMEMLIMIT=1GiB run_resil r2 "$dir" --runtime-hints \
		--state-dir /run/hints -- $REPORT NODE_OPTIONS GOMEMLIMIT)
	show "$S/r.err" "$S/r.out" "$S/r2.out"
	expect "exit status" "$rc/$rc2" 0/0
	expect "NODE_OPTIONS (75% of 200 MiB)" "$(app_value "$S/r.out" 0 NODE_OPTIONS)" --max-old-space-size=150
	expect "GOMEMLIMIT (90% of 200 MiB)" "$(app_value "$S/r.out" 0 GOMEMLIMIT)" 188743680
	expect "NODE_OPTIONS given" "$(app_value "$S/r2.out" 0 NODE_OPTIONS)" \
		"--enable-source-maps --max-old-space-size=150"
	expect "GOMEMLIMIT given" "$(app_value "$S/r2.out" 0 GOMEMLIMIT)" 1GiB
	no_warnings "$S/r.err"
}

# memory.high far below memory.max: the kernel throttles the hog (reclaim and
# penalty sleeps, which PSI counts as memory stall) long before any OOM, and the
# working set stays far below the warn threshold, so only pressure can raise the
# tier. --memory-interval 1h: nothing but kernel notifications drives resil-init.
sc_psi_pressure() {
	dir=$(new_cgroup psi memory.max=256M memory.high=24M)
	rc=$(run_resil r "$dir" -v --pressure-signal USR1 --memory-interval 1h --state-dir /run/psi \
		-- memhog 64 4 20 5000)
	show "$S/r.err" "$S/r.out"
	sed 's/^/  pressure: /' "$dir/memory.pressure"
	expect "exit status" "$rc" 0
	has "$S/r.err" 'PSI trigger armed' "a PSI trigger was armed"
	has "$S/r.err" 'PSI trigger fired' "the PSI trigger fired"
	has "$S/r.err" 'memory tier normal -> (warning|critical)' "the tier rose"
	has "$S/r.out" 'memhog: got SIGUSR1' "--pressure-signal reached the app"
	high=$(keyed "$dir/memory.events" high)
	expect_between "memory.events high (throttled)" "$high" 1 100000000
	detail "high_events=$high $(grep -E -o 'memory tier normal -> [a-z]+' "$S/r.err" | head -n 1)"
}

# before A B: line A of a log exists and comes before line B
before() {
	[ "$1" -gt 0 ] && [ "$1" -lt "$2" ]
}

# The same pressure from the start, and the hog gone (SIGALRM, which even a
# throttled process cannot put off) 1.5 s after its start: within the first
# 2 s PSI window of the run, like a hog the OOM killer ends early.
sc_psi_early() {
	dir=$(new_cgroup psi-early memory.max=256M memory.high=16M)
	rc=$(run_resil r "$dir" -v --memory-interval 1h --state-dir /run/psi-early -- memhog -k 1500 48 4 20 0)
	show "$S/r.err" "$S/r.out"
	sed 's/^/  pressure: /' "$dir/memory.pressure"
	expect "exit status (the hog died of SIGALRM)" "$rc" 142
	armed=$(line_of "$S/r.err" 'PSI trigger armed')
	died=$(line_of "$S/r.err" 'app died of SIGALRM')
	fired=$(line_of "$S/r.err" 'PSI trigger fired')
	check "the PSI trigger was armed while the hog ran (log lines: armed $armed, death $died)" \
		before "$armed" "$died"
	check "the PSI trigger fired while the hog ran (log lines: fired $fired, death $died)" \
		before "$fired" "$died"
	high=$(keyed "$dir/memory.events" high)
	expect_between "memory.events high (throttled)" "$high" 1 100000000
	detail "log lines: armed $armed, fired $fired, the hog's death $died"
}

sc_psi_short_app() {
	dir=$(new_cgroup short memory.max=64M)
	rc=$(run_resil r "$dir" -v --state-dir /run/short -- true)
	show "$S/r.err"
	expect "exit status" "$rc" 0
	hasnt "$S/r.err" 'PSI trigger armed' "no PSI trigger for an app that lives a moment"
}
