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
rmmod moreram
