#!/bin/sh
# The scenarios' app: prints, for each variable named, one line
#     APP <RESIL_RESTART_COUNT> NAME=VALUE      (or "APP <n> NAME" when unset)
# so a scenario can tell what each start of the app was given.
for name in "$@"; do
	if eval "[ \"\${$name+set}\" = set ]"; then
		eval "printf 'APP %s %s=%s\n' \"\$RESIL_RESTART_COUNT\" \"\$name\" \"\$$name\""
	else
		printf 'APP %s %s\n' "$RESIL_RESTART_COUNT" "$name"
	fi
done
