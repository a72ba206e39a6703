#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the test kernel in QEMU with moreram's emulated BAR devices, run a guest
# script, and judge the run.
#
#   vm.sh --kdir DIR --module FILE [--add FILE]... [--timeout S] [--log FILE]
#         [--show] GUEST_SCRIPT
#
# Devices: ivshmem-plain with a 256 MiB memory BAR backed by a host file (so a
# test can check from the host what landed in device memory), and
# bochs-display with $BOCHS_VRAM_MB MiB of VRAM.
# The guest script runs as /guest.sh under busybox sh with /proc, /sys,
# /dev and debugfs mounted; files given with --add are in /bin.
#
# Exit status: 0 when the guest script exited 0 and the kernel log is clean;
# 1 when the script failed, a KTAP line says "not ok", or the kernel printed a splat
# (WARNING, BUG, Oops, lockdep, KASAN, UBSAN, kmemleak report, panic); 2 when
# the guest hung (timeout). The reason is
# printed; the console log is kept (--log, default build/logs/).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$top/build}
CACHE=${MORERAM_CACHE:-$HOME/.cache/moreram}
IVSHMEM_MB=${IVSHMEM_MB:-256}
BOCHS_VRAM_MB=${BOCHS_VRAM_MB:-64}
GUEST_MB=${GUEST_MB:-1024}

kdir= module= timeout=900 log= show=0 accel=${MORERAM_ACCEL:-auto}
adds=()
while [ $# -gt 1 ]; do
	case "$1" in
	--kdir) kdir=$2; shift 2 ;;
	--module) module=$2; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--accel) accel=$2; shift 2 ;;
	--show) show=1; shift ;;
	*) echo "vm.sh: unknown option $1" >&2; exit 64 ;;
	esac
done
script=${1:?usage: vm.sh --kdir DIR --module FILE [--add FILE]... GUEST_SCRIPT}
kernel=$kdir/arch/x86/boot/bzImage
[ -f "$kernel" ] || { echo "vm.sh: no kernel at $kernel" >&2; exit 64; }
[ -f "$module" ] || { echo "vm.sh: no module at $module" >&2; exit 64; }

mkdir -p "$BUILD/logs"
log=${log:-$BUILD/logs/vm-$(date +%Y%m%d-%H%M%S).log}

# --- initramfs ---------------------------------------------------------------
root=$(mktemp -d)
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,lib/modules,root,etc,host}
cp /bin/busybox "$root/bin/busybox"
cp "$module" "$root/lib/modules/moreram.ko"
cp "$script" "$root/guest.sh"
for f in "${adds[@]}"; do cp "$f" "$root/bin/"; done
cp "$here/guest/host-run" "$root/bin/host-run"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
# HOST_BUILD: the build directory as the host names it (the guest sees it under /host).
printf 'IVSHMEM_MB=%s\nBOCHS_VRAM_MB=%s\nHOST_BUILD=%s\n' "$IVSHMEM_MB" "$BOCHS_VRAM_MB" \
	"$(cd "$BUILD" && pwd)" >"$root/etc/moreram-vm.env"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
# cgroup v2, before host-run binds /sys into /host (the preload reads its memory cgroup).
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# The host's root, read-only: its dynamically linked programs run through
# host-run. cache=loose: reads go through the guest's page cache (a second start
# of a program is faster; the guest reads nothing the host changes while the VM
# runs); without it 9p reads straight into the reader's buffer, pinning its pages,
# which fails with EFAULT where the buffer is tier memory (a preloaded program).
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host
# Booted with loglevel=6 (see the command line below); from here on the console
# shows everything.
echo 7 > /proc/sys/kernel/printk
export PATH=/bin:/sbin HOME=/root
cd /root
echo "moreram-vm: guest up"
sh /guest.sh
status=$?
echo "moreram-vm: exit $status"
sync
reboot -f
INIT
chmod +x "$root/init" "$root/guest.sh" "$root/bin/host-run"
initrd=$BUILD/initramfs.cpio.gz
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

# --- acceleration ------------------------------------------------------------
# Nested KVM hangs or aborts on some hosts: use it only where a short probe
# boot shows it works, and remember the verdict for this host boot.
use_kvm=0
if [ "$accel" = auto ] && [ -w /dev/kvm ]; then
	verdict=$CACHE/kvm-$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo x)
	if [ ! -f "$verdict" ]; then
		mkdir -p "$CACHE"
		if timeout 20 qemu-system-x86_64 -enable-kvm -cpu host -m 256 -nographic -no-reboot \
			-vga none -net none -kernel "$kernel" -initrd "$initrd" \
			-append "console=ttyS0 panic=-1 rdinit=/bin/busybox -- poweroff" \
			</dev/null 2>&1 | grep -q 'Run /bin/busybox'; then
			echo kvm >"$verdict"
		else
			echo tcg >"$verdict"
		fi
	fi
	[ "$(cat "$verdict")" = kvm ] && use_kvm=1
elif [ "$accel" = kvm ]; then
	use_kvm=1
fi
if [ $use_kvm = 1 ]; then
	accel_opts=(-enable-kvm -cpu host)
else
	accel_opts=(-accel tcg -cpu max)
fi

# --- boot --------------------------------------------------------------------
# The guest writes KTAP to /dev/kmsg (printk.devkmsg=on: unthrottled), and
# kunit.py parses only the first KTAP document of a log: the kernel's own, for
# its built-in suites, would come first. So the console shows info lines only
# from /init on (loglevel=6 at boot; the boot's lines stay in dmesg).
vram=$BUILD/ivshmem.bin
rm -f "$vram"
truncate -s "${IVSHMEM_MB}M" "$vram"

# Two sockets of one core each: with `-smp 2` alone QEMU makes one socket of two cores,
# and SeaBIOS's MP table (all this ACPI-less kernel reads) lists one CPU per socket, so
# the guest ran on one CPU. Under TCG each vCPU is a host thread (MTTCG).
qemu=(qemu-system-x86_64 "${accel_opts[@]}" -smp 2,sockets=2 -m "$GUEST_MB"
	-nographic -no-reboot -vga none -net none -monitor none -serial stdio
	-object "memory-backend-file,id=vram,size=${IVSHMEM_MB}M,mem-path=$vram,share=on"
	-device ivshmem-plain,memdev=vram
	-device "bochs-display,vgamem=${BOCHS_VRAM_MB}M"
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-kernel "$kernel" -initrd "$initrd"
	-append "console=ttyS0 loglevel=6 printk.devkmsg=on panic=-1 oops=panic panic_on_warn=0 rdinit=/init")

start=$(date +%s)
set +e
if [ $show = 1 ]; then
	timeout --foreground -k 5 "$timeout" "${qemu[@]}" </dev/null 2>&1 | tee "$log" |
		sed -u -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' |
		grep --line-buffered -v -e '^moreram-vm: ' -e '^\s*$' -e '^SeaBIOS' -e '^Booting from' |
		grep --line-buffered -e '^[^[]' -e '\] moreram '
	rc=${PIPESTATUS[0]}
else
	timeout -k 5 "$timeout" "${qemu[@]}" </dev/null >"$log" 2>&1
	rc=$?
fi
set -e
elapsed=$(( $(date +%s) - start ))
tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"

# --- judge -------------------------------------------------------------------
fail() { echo "vm: FAIL: $*" >&2; echo "vm: console log: $log" >&2; exit "${2:-1}"; }

splat=$(grep -n -E '^\[ *[0-9]+\.[0-9]+\] (WARNING:|BUG:|Oops|kernel BUG|Kernel panic|general protection fault|UBSAN:|KASAN|kmemleak: [0-9]+ new suspected|INFO: (task .* blocked|rcu_)|.*possible circular locking|.*possible recursive locking|.*inconsistent lock state|.*suspicious RCU usage)' "$log" | head -5 || true)
if [ $rc = 124 ] || [ $rc = 137 ]; then
	[ -z "$splat" ] || echo "$splat" >&2
	fail "guest hung: no exit after ${timeout}s" 2
fi
[ -z "$splat" ] || fail "kernel splat in the log:
$splat"
ktap_fail=$(grep -n -E '^\[ *[0-9]+\.[0-9]+\] +not ok [0-9]+ ' "$log" | head -5 || true)
[ -z "$ktap_fail" ] || fail "a test failed (KTAP):
$ktap_fail"
status=$(sed -n 's/^moreram-vm: exit \([0-9]*\)$/\1/p' "$log" | tail -1)
[ -n "$status" ] || fail "guest did not finish its script (qemu exit $rc)"
[ "$status" = 0 ] || fail "guest script exited $status"
echo "vm: ok in ${elapsed}s ($([ $use_kvm = 1 ] && echo kvm || echo tcg)); console log: $log" >&2
