#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The demo of `make run`: load the module, show the tier's banks, allocate, and end with an
# unmodified program whose heap lives in VRAM.
set -e
insmod /lib/modules/moreram.ko
echo
echo "== /dev/moreram: the banks of the tier"
moreram-banks
echo
echo "== allocate, map, fill and verify: C sample (1 MiB), Rust sample (64 MiB)"
moreram-alloc 1024
moreram-alloc-rs 65536
echo
echo "== libmoreram from Rust: the heap in the tier (#[global_allocator]), values freed on drop"
moreram-heap-rs 64
echo
echo "== two programs hold memory: 64 MiB preferring VRAM, 16 MiB of system pages"
moreram alloc 64M --hold > /tmp/a.out &
A=$!
moreram alloc 16M --system --hold > /tmp/b.out &
B=$!
for i in $(seq 50); do [ -s /tmp/a.out ] && [ -s /tmp/b.out ] && break; sleep 0.2; done
cat /tmp/a.out /tmp/b.out
echo
echo "== moreram stat"
moreram stat
kill $A $B
wait $A $B 2>/dev/null || true
echo
echo "== an unmodified program with its heap in VRAM: Debian's python3 (host-run), under"
echo "   moreram run --policy prefer --threshold 16"
. /etc/moreram-vm.env
mkfifo /tmp/demo-input
host-run PYTHONMALLOC=malloc "$HOST_BUILD/prefix/bin/moreram" run --policy prefer --threshold 16 \
	--summary -- python3 -c '
import sys
rows = sorted(str(i * 7919 % 100003) * 20 for i in range(300000))
print("python3: %d strings built and sorted, held while moreram stat looks" % len(rows), flush=True)
sys.stdin.read()
print("python3: the smallest starts with %s, the largest with %s" % (rows[0][:10], rows[-1][:10]))
' </tmp/demo-input >/tmp/python.out &
P=$!
exec 4>/tmp/demo-input
for i in $(seq 300); do grep -q held /tmp/python.out && break; sleep 0.2; done
cat /tmp/python.out
echo
echo "== moreram stat"
moreram stat
exec 4>&-
wait $P
tail -n 1 /tmp/python.out
echo
rmmod moreram
