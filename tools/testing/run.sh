#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`: set up, build, boot the VM, load the module and run the demo.
# `make bench` (run.sh bench): the same, running the benchmarks instead.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
export BUILD=${BUILD:-$top/build}
export PATH=$HOME/.cargo/bin:$PATH

tools/testing/setup.sh
KDIR=$(tools/testing/kernel.sh)
make --no-print-directory module KDIR="$KDIR" >/dev/null
make --no-print-directory tools >/dev/null
# What the guest runs of the host's through host-run: libmoreram-preload.so and the moreram
# command for the host's C library (the demo's last program, the benchmark's preload), and
# the malloc benchmark.
mkdir -p "$BUILD/logs" "$BUILD/preload"
make --no-print-directory install PREFIX="$BUILD/prefix" >"$BUILD/logs/install.log" 2>&1 ||
	{ tail -20 "$BUILD/logs/install.log"; exit 1; }
cc -O2 -Wall -Wextra -Werror -pthread -o "$BUILD/preload/malloc-bench" tools/testing/malloc-bench.c
bin=tools/target/x86_64-unknown-linux-gnu/release
guest=tools/testing/guest/demo.sh
[ "${1:-}" != bench ] || guest=tools/testing/guest/bench.sh
echo "booting the VM: ivshmem-plain (${IVSHMEM_MB:-256} MiB) and bochs-display (${BOCHS_VRAM_MB:-64} MiB VRAM)"
tools/testing/vm.sh --show --kdir "$KDIR" --module moreram.ko --log "$BUILD/logs/vm-run.log" \
	--add "$bin/moreram-bench" --add "$bin/moreram-alloc-rs" --add "$bin/moreram-heap-rs" --add "$bin/moreram" --add "$bin/moreram-fuzz" \
	--add "$BUILD/samples/moreram-banks" --add "$BUILD/samples/moreram-alloc" \
	"$guest"
