#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The demo of `make run`: load the module and show the tier's banks.
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
rmmod moreram
