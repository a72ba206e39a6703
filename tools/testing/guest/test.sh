#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The test run inside the VM: load the module (its KUnit suites run on load),
# run the integration programs, unbind/rebind every device, unload and reload.
# Every check prints "moreram-test: ok NAME" or "moreram-test: not ok NAME: WHY".

. /etc/moreram-vm.env
EXPECT="--expect 1af4:1110:2:${IVSHMEM_MB}M --expect 1234:1111:0:${BOCHS_VRAM_MB}M"
DRV=/sys/bus/pci/drivers/moreram
status=0

ok() { echo "moreram-test: ok $1"; }
notok() { echo "moreram-test: not ok $1: $2"; status=1; }
# step NAME CMD...: CMD must succeed.
step() {
	name=$1; shift
	if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$(echo "$out" | tail -n 1)"; echo "$out"; fi
}
# refuse NAME CMD...: CMD must fail.
refuse() {
	name=$1; shift
	if out=$("$@" 2>&1); then notok "$name" "succeeded: $out"; else ok "$name"; fi
}
itest() { moreram-itest $EXPECT "$@" || status=1; }
drm_cards() { for c in /sys/class/drm/card*; do [ -e "$c/device/driver" ] && basename "$(readlink "$c/device/driver")"; done | grep -c '^moreram$'; }

step insmod insmod /lib/modules/moreram.ko
itest banks-report banks-bad-input dev-access
step drm-device-per-bank test "$(drm_cards)" = 2
step sample-moreram-banks moreram-banks

# The memory tier.
itest alloc-map-free exhaustion-and-fallback zeroing alloc-bad-input mmap-bad-input \
	free-while-mapped close-while-mapped fork unbind-while-mapped write-combining
step sample-moreram-alloc moreram-alloc
step sample-moreram-alloc-rs moreram-alloc-rs
itest count=2 banks-report

# Page owners, and the attacks against them.
itest owner-reader grant-revoke revoke-own-and-all give other-user owner-exit attack-mprotect-remap \
	attack-child-of-reader attack-pid-reuse race-give-munmap
itest count=2 banks-report

# Pools, scavenging and the low-memory notification.
itest watermark-sysfs pool-reserve-scavenge scavenge-notify-8 scavenge-notify-64 \
	scavenge-deadline scavenge-signal pool-shrinker pool-shrinker-pressure
itest count=2 banks-report

# What users and admins see.
itest fdinfo drm-fdinfo sysfs-numbers cli-stat-json debugfs-numbers memdebug-poison memdebug-leak \
	fault-injection
itest count=2 banks-report

# Unbind and rebind each device through sysfs, with /dev/moreram open meanwhile.
exec 3<>/dev/moreram
for dev in $(ls $DRV | grep '^0000:'); do
	step "unbind-$dev" sh -c "echo $dev > $DRV/unbind"
	itest count=1
	step "drm-gone-after-unbind-$dev" test "$(drm_cards)" = 1
	step "rebind-$dev" sh -c "echo $dev > $DRV/bind"
	itest count=2
done
itest banks-report

# Nothing the module allocated may be left unreferenced (kmemleak reports only
# objects older than 5 s).
if [ -w /sys/kernel/debug/kmemleak ]; then
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	if grep -q moreram /sys/kernel/debug/kmemleak; then
		notok kmemleak "leak reported"; cat /sys/kernel/debug/kmemleak
	else
		ok kmemleak
	fi
fi

# Unloading: refused while a file is open, clean once closed.
refuse rmmod-refused-while-open rmmod moreram
exec 3>&-
step rmmod rmmod moreram
step dev-node-gone test ! -e /dev/moreram
step drm-devices-gone test "$(drm_cards)" = 0
step reload-with-parameters insmod /lib/modules/moreram.ko low_watermark_percent=20
export MORERAM_LOW_PERCENT=20
itest count=2 banks-report watermark-sysfs
unset MORERAM_LOW_PERCENT


# Bytes for the host to find in the ivshmem BAR's backing file after the run,
# held by a process that is still alive when the VM stops.
moreram-itest marker >/tmp/marker.out 2>&1 &
for i in $(seq 50); do grep -q '^moreram-test:' /tmp/marker.out && break; sleep 0.2; done
cat /tmp/marker.out
grep -q '^moreram-test: ok marker' /tmp/marker.out || status=1
exit $status
