#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make stress [SECONDS=...] [SEED=...] [OPS=...]`: the long randomized campaign (moreram-fuzz) in the
# test VM, with fault injection, unbind/rebind, rmmod attempts, memory pressure and KCOV
# coverage; then kmemleak and the unload. Prints the campaign's report as it comes; exits
# non-zero on any oracle failure, splat, leak or hang. See Documentation/testing.rst.

set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"
export BUILD=${BUILD:-$top/build}
export PATH=$HOME/.cargo/bin:$PATH
secs=${FUZZ_SECONDS:-600}
seed=${FUZZ_SEED:-}
ops=${FUZZ_OPS:-}

tools/testing/setup.sh
KDIR=$(tools/testing/kernel.sh)
make --no-print-directory module KDIR="$KDIR" >/dev/null
make --no-print-directory tools >/dev/null
bin=tools/target/x86_64-unknown-linux-gnu/release
mkdir -p "$BUILD/logs"
guest=$BUILD/stress-guest.sh
{
	echo '#!/bin/sh'
	echo "FUZZ_SECONDS=$secs"
	echo "FUZZ_SEED=$seed"
	echo "FUZZ_OPS=$ops"
	cat tools/testing/guest/stress.sh
} >"$guest"
echo "stress: ${secs}s of moreram-fuzz in the VM${ops:+ (or $ops operations)}${seed:+, seed $seed} (log: $BUILD/logs/vm-stress.log)"
tools/testing/vm.sh --show --timeout $((secs + 900)) --kdir "$KDIR" --module moreram.ko \
	--log "$BUILD/logs/vm-stress.log" --add "$bin/moreram-fuzz" "$guest"
