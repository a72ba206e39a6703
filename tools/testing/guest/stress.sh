#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The long campaign, run in the VM by `make stress`: moreram-fuzz with faults and coverage for
# FUZZ_SECONDS, or until FUZZ_OPS operations (seed FUZZ_SEED, or one from the clock), then a
# kmemleak scan and the unload. tools/testing/stress.sh puts the variables in front of this script.

. /etc/moreram-vm.env
status=0
insmod /lib/modules/moreram.ko || exit 1
seed=
[ -n "${FUZZ_SEED:-}" ] && seed="--seed $FUZZ_SEED"
[ -n "${FUZZ_OPS:-}" ] && seed="$seed --total-ops $FUZZ_OPS"
# shellcheck disable=SC2086
moreram-fuzz $seed --seconds "${FUZZ_SECONDS:-600}" --faults --coverage || status=1
# Where the machine's time went that the campaign's own table does not show: the tasks still
# alive that used most CPU (clock ticks, user + system), kernel threads among them.
echo "stress: busiest tasks left (ticks, name):"
cat /proc/[0-9]*/stat 2>/dev/null | awk '{ print $14 + $15, $2 }' | sort -rn | head -6

# Nothing the module allocated may be left unreferenced (kmemleak reports objects older than 5 s).
if [ -w /sys/kernel/debug/kmemleak ]; then
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	if grep -q moreram /sys/kernel/debug/kmemleak; then
		echo "stress: kmemleak reports leaks naming moreram:"
		cat /sys/kernel/debug/kmemleak
		status=1
	else
		echo "stress: kmemleak: no leak naming moreram"
	fi
fi
if rmmod moreram; then
	echo "stress: module unloaded"
else
	echo "stress: rmmod failed after the run"
	status=1
fi
exit $status
