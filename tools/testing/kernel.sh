#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (once) the test kernel: tinyconfig + tools/testing/moreram.config, with
# Rust. The build lives in $MORERAM_CACHE/kbuild/<key>, where the key hashes the
# kernel version, rustc, clang and the config fragment: a second run with
# nothing changed reuses it. Prints the build directory on stdout.
#
#   kernel.sh          build if needed, print the directory
#   kernel.sh --dir    print the directory of a finished build, or fail

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${MORERAM_CACHE:-$HOME/.cache/moreram}
KVER_SERIES=${KVER_SERIES:-7.3}
SRC=$CACHE/linux-$KVER_SERIES
FRAG=$here/moreram.config
LLVM_SUFFIX=${LLVM_SUFFIX:--19}

log() { printf 'kernel: %s\n' "$*" >&2; }
die() { printf 'kernel: error: %s\n' "$*" >&2; exit 1; }

[ -f "$SRC/.done" ] || die "no kernel source in $SRC: run tools/testing/setup.sh"
export PATH=$HOME/.cargo/bin:$PATH
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm${LLVM_SUFFIX}/lib}
RUSTC_VER=$(rustc --version | awk '{print $2}')
RUST_LIB_SRC=$CACHE/rust-src-$RUSTC_VER/library
[ -d "$RUST_LIB_SRC" ] || die "no rust-src for rustc $RUSTC_VER: run tools/testing/setup.sh"

kver=$(make -s -C "$SRC" kernelversion)
key=$( { echo "$kver"; rustc --version; "clang$LLVM_SUFFIX" --version | head -1;
         bindgen --version; cat "$FRAG"; echo v1; } | sha256sum | cut -c1-16)
OUT=$CACHE/kbuild/$kver-$key
MK=(make -C "$SRC" O="$OUT" LLVM="$LLVM_SUFFIX" RUST_LIB_SRC="$RUST_LIB_SRC" -j"$(nproc)")

if [ -f "$OUT/.done" ]; then
	echo "$OUT"
	exit 0
fi
# --dir: only say where a finished build is; never build.
[ "${1:-}" != --dir ] || exit 1

log "building Linux $kver in $OUT (first time: about 10 minutes on 2 cores)"
mkdir -p "$OUT"
"${MK[@]}" -s tinyconfig >&2
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" "$FRAG" >/dev/null
"${MK[@]}" -s olddefconfig >&2

# merge_config drops what Kconfig refuses; check what we rely on survived.
fail=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		grep -qx "$line" "$OUT/.config" || { log "config lost: $line"; fail=1; } ;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }; sym=${sym%% *}
		! grep -q "^$sym=" "$OUT/.config" || { log "config forced on: $sym"; fail=1; } ;;
	esac
done <"$FRAG"
grep -qx CONFIG_GPU_BUDDY=y "$OUT/.config" || { log "config lost: CONFIG_GPU_BUDDY=y"; fail=1; }
if [ $fail = 1 ]; then
	"${MK[@]}" rustavailable >&2 || true
	die "the configuration above is not what moreram needs"
fi

start=$(date +%s)
"${MK[@]}" all >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log" >&2; die "kernel build failed (log: $OUT/build.log)"; }
log "kernel built in $(( $(date +%s) - start ))s"
touch "$OUT/.done"
echo "$OUT"
