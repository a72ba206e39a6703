#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Benchmarks, run in the VM by `make bench`: times and ratios against baselines
# measured in the same run. Nothing is asserted.
set -e
insmod /lib/modules/moreram.ko
moreram-bench
rmmod moreram
