#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Benchmarks, run in the VM by `make bench`: times and ratios against baselines
# measured in the same run. Nothing is asserted.
set -e
. /etc/moreram-vm.env
insmod /lib/modules/moreram.ko
moreram-bench

# libmoreram-preload.so against the C library's malloc: tools/testing/malloc-bench.c, built on
# the host and run through host-run, with and without the preload, one after the other.
B=$HOST_BUILD/preload/malloc-bench
M=$HOST_BUILD/prefix/bin/moreram
# Pairs per thread; a fiftieth of them for 64..128 KiB, where a pair costs the C library
# about 170 us with one thread under TCG.
PAIRS=2000000
LARGE=$((PAIRS / 50))
# bench [NAME=VALUE...] PROGRAM...: "ONE MANY", nanoseconds per pair with 1 and 4 threads.
bench() {
	host-run "$@" | sed -n 's/.*: \([0-9.]*\) ns\/pair (1 thread), \([0-9.]*\) ns\/pair.*/\1 \2/p'
}
# row TITLE "GLIBC" "PRELOAD": the two measurements and their ratio, per column.
row() {
	echo "$2 $3" | awk -v t="$1" '{ printf "%-44s %7.1f %7.1f %5.2fx   %7.1f %7.1f %5.2fx\n", t, $1, $3, $3 / $1, $2, $4, $4 / $2 }'
}
echo
echo "== malloc/free pairs under libmoreram-preload.so (moreram run) against the C library"
echo "   nanoseconds per pair, 16 blocks live; 4 threads: wall time over all their pairs"
printf '%-44s %7s %7s %6s   %7s %7s %6s\n' "" glibc preload ratio glibc preload ratio
printf '%-44s %23s   %23s\n' "" "1 thread" "4 threads"
small=$(bench "$B" 16 528 "$PAIRS")
large=$(bench "$B" 65536 131072 "$LARGE")
row "16..528 B, threshold 64K (the C library's)" "$small" \
	"$(bench "$M" run --policy prefer --threshold 64K -- "$B" 16 528 "$PAIRS")"
row "16..528 B, threshold 16 (the tier's)" "$small" \
	"$(bench "$M" run --policy prefer --threshold 16 -- "$B" 16 528 "$PAIRS")"
row "64..128 KiB, threshold 64K (the tier's)" "$large" \
	"$(bench "$M" run --policy prefer --threshold 64K -- "$B" 65536 131072 "$LARGE")"
rmmod moreram
