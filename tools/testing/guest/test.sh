#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The test run inside the VM: load the module (its KUnit suites run on load),
# run the integration tests, unbind/rebind every device, unload and reload.
#
# The run is one KTAP document (Documentation/dev-tools/ktap.rst) written to
# /dev/kmsg, so that the console prints it in order with the kernel's lines and
# with their "[time] " prefix, and tools/testing/kunit/kunit.py parse reads the
# whole console log. Its tests: the shell steps below; the groups of
# moreram-itest, each a subtest with its tests one level down; and after each
# load a "kunit" line that closes the KTAP document the module's KUnit suites
# printed, nesting it in this one.

. /etc/moreram-vm.env
EXPECT="--expect 1af4:1110:2:${IVSHMEM_MB}M --expect 1234:1111:0:${BOCHS_VRAM_MB}M"
DRV=/sys/bus/pci/drivers/moreram
status=0 n=0

say() { echo "$*" >/dev/kmsg; }
# diag TEXT: TEXT, if any, as KTAP diagnostic lines.
diag() { [ -z "$1" ] || echo "$1" | cut -c 1-400 | while IFS= read -r l; do say "# $l"; done; }
# result NAME RC: the result line of the next test; RC 0 is ok.
result() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then say "ok $n $1"; else say "not ok $n $1"; status=1; fi
}
# step NAME CMD...: CMD must succeed.
step() {
	name=$1; shift
	out=$("$@" 2>&1)
	rc=$?
	[ $rc = 0 ] || diag "$out"
	result "$name" $rc
}
# refuse NAME CMD...: CMD must fail.
refuse() {
	name=$1; shift
	if out=$("$@" 2>&1); then diag "succeeded: $out"; result "$name" 1; else result "$name" 0; fi
}
# group NAME [OPTION...]: moreram-itest runs the tests of group NAME.
group() {
	name=$1; shift
	moreram-itest $EXPECT "$@" --group "$name" >/dev/kmsg
	result "$name" $?
}
# load NAME [PARAM...]: insmod. The module's KUnit suites run on load and print
# their KTAP document; the "kunit" line closes it, ok when their own record in
# debugfs has them all passed.
load() {
	name=$1; shift
	out=$(insmod /lib/modules/moreram.ko "$@" 2>&1)
	rc=$?
	r=$(cat /sys/kernel/debug/kunit/moreram*/results 2>/dev/null)
	[ -n "$r" ] && ! echo "$r" | grep -q '^not ok'
	result kunit $?
	[ $rc = 0 ] || diag "$out"
	result "$name" $rc
}
drm_cards() { for c in /sys/class/drm/card*; do [ -e "$c/device/driver" ] && basename "$(readlink "$c/device/driver")"; done | grep -c '^moreram$'; }

say "KTAP version 1"
load insmod
group banks
step drm-device-per-bank test "$(drm_cards)" = 2
step sample-moreram-banks moreram-banks

# The memory tier.
group tier
step sample-moreram-alloc moreram-alloc
step sample-moreram-alloc-rs moreram-alloc-rs
step sample-moreram-heap-rs moreram-heap-rs
group recheck

# The host's own programs, dynamically linked from Debian, run in the guest
# (host-run: the host's root over 9p): what the preload's tests stand on.
step host-python test "$(host-run /usr/bin/python3 -c 'import hashlib; print(hashlib.sha256(bytes(range(256)) * 4096).hexdigest())')" = fbbab289f7f94b25736c58be46a994c441fd02552cc6022352e3d86d2fab7c83
step host-sqlite3 test "$(host-run /usr/bin/sqlite3 :memory: 'with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000) select sum(x) from c;')" = 5000050000

# Unmodified programs with their heap in the tier (libmoreram-preload.so, `moreram run`):
# python3, sqlite3 and zstd against their output without it, eight threads freeing each
# other's blocks, spill under a memory cgroup, scavenging by the library's watcher thread.
export MORERAM_HOST_BUILD=$HOST_BUILD
group preload
group recheck

# Page owners, and the attacks against them.
group owners
group recheck

# Pools, scavenging and the low-memory notification.
group pools
group recheck

# What users and admins see.
group observe
group recheck

# What one user can make the module do or hold, and error paths that leave nothing.
group limits
group recheck

# The campaign's fixed slice (moreram-fuzz): 16 processes of random calls, valid and not, with
# fault injection, memory pressure, unbind/rebind and rmmod attempts, judged by an oracle; one
# result per oracle dimension (about 40 s). `make stress` is the long run.
moreram-fuzz --seed 20261203 --seconds 32 --faults --coverage --ktap >/dev/kmsg
result fuzz $?
group recheck

# Unbind and rebind each device through sysfs, with /dev/moreram open meanwhile.
exec 3<>/dev/moreram
for dev in $(ls $DRV | grep '^0000:'); do
	step "unbind-$dev" sh -c "echo $dev > $DRV/unbind"
	group count --banks 1
	step "drm-gone-after-unbind-$dev" test "$(drm_cards)" = 1
	step "rebind-$dev" sh -c "echo $dev > $DRV/bind"
	group recheck
done

# Nothing the module allocated may be left unreferenced (kmemleak reports only
# objects older than 5 s).
if [ -w /sys/kernel/debug/kmemleak ]; then
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	! grep -q moreram /sys/kernel/debug/kmemleak
	rc=$?
	[ $rc = 0 ] || diag "$(cat /sys/kernel/debug/kmemleak)"
	result kmemleak $rc
else
	n=$((n + 1))
	say "ok $n kmemleak # SKIP no kmemleak in this kernel"
fi

# Unloading: refused while a file is open, clean once closed.
refuse rmmod-refused-while-open rmmod moreram
exec 3>&-
step rmmod rmmod moreram
step dev-node-gone test ! -e /dev/moreram
step drm-devices-gone test "$(drm_cards)" = 0
load reload-with-parameters low_watermark_percent=20 \
	max_handles_per_file=64 max_handles_per_user=100 max_shares_per_file=32 max_shares_per_user=48
export MORERAM_LOW_PERCENT=20 MORERAM_LIMITS=64,100,32,48
group reload
group quota
unset MORERAM_LOW_PERCENT MORERAM_LIMITS

# Bytes for the host to find in the ivshmem BAR's backing file after the run,
# held by a process that is still alive when the VM stops; the test says
# "moreram-test: ok marker" once they are written.
moreram-itest --group hold >/tmp/marker.out 2>&1 &
for i in $(seq 50); do grep -q '^moreram-test: ok marker' /tmp/marker.out && break; sleep 0.2; done
grep -q '^moreram-test: ok marker' /tmp/marker.out
rc=$?
diag "$(grep -v '^ ' /tmp/marker.out)"
result marker $rc
exit $status
