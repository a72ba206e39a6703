#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Generate rust/uapi/generated.rs, the Rust view of the user ABI, from its one
# definition, include/uapi/linux/moreram.h, with bindgen: every struct and
# every constant, the _IOWR ioctl numbers included (--clang-macro-fallback has
# clang evaluate them). tools/moreram, and later the module, include! it.
#
#   uapi.sh          regenerate rust/uapi/generated.rs (`make uapi`)
#   uapi.sh FILE     write to FILE instead (`make test` compares the two)
#
# The output depends on the header, bindgen (its version is in the file;
# setup.sh installs that one), libclang 19 and the target (x86_64), and on
# nothing of the host: the header's <linux/types.h> and <linux/ioctl.h> come
# from the UAPI headers that the cached kernel tree exports (`make headers`,
# once per kernel version, into $MORERAM_CACHE/uapi-headers/<version>), and
# clang runs with -nostdinc, so /usr/include (linux-libc-dev, of whatever
# version the machine has) never takes part.
#
# Environment:
#   MORERAM_CACHE   cache directory (default ~/.cache/moreram)
#   KVER_SERIES     kernel series whose headers to use (default 7.3)

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CACHE=${MORERAM_CACHE:-$HOME/.cache/moreram}
KVER_SERIES=${KVER_SERIES:-7.3}
SRC=$CACHE/linux-$KVER_SERIES
LLVM_SUFFIX=${LLVM_SUFFIX:--19}
HEADER=include/uapi/linux/moreram.h
OUT=${1:-$top/rust/uapi/generated.rs}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

log() { printf 'uapi: %s\n' "$*" >&2; }
die() { printf 'uapi: error: %s\n' "$*" >&2; exit 1; }

[ -f "$SRC/.done" ] || die "no kernel source in $SRC: run tools/testing/setup.sh"
export PATH=$HOME/.cargo/bin:$PATH
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm${LLVM_SUFFIX}/lib}
command -v bindgen >/dev/null || die "bindgen not found: run tools/testing/setup.sh"

# The kernel's exported UAPI headers, as user space sees them, made once.
kver=$(make -s -C "$SRC" kernelversion)
HDR=$CACHE/uapi-headers/$kver
if [ ! -f "$HDR/.done" ]; then
	log "exporting the UAPI headers of Linux $kver into $HDR (once)"
	tmp=$HDR.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	make -s -C "$SRC" O="$tmp/build" ARCH=x86 LLVM="$LLVM_SUFFIX" headers >&2 ||
		die "make headers failed in $tmp/build"
	mv "$tmp/build/usr/include" "$tmp/include"
	rm -rf "$tmp/build"
	touch "$tmp/.done"
	# Another run may have won the race: then keep its copy.
	mv -T "$tmp" "$HDR" 2>/dev/null || rm -rf "$tmp"
fi

# Every flag is in the file's header comment; keep them free of machine paths.
FLAGS=(--use-core --rust-target 1.85 --rust-edition 2021
       --allowlist-item 'moreram_.*' --allowlist-item 'MORERAM_.*'
       --clang-macro-fallback
       --with-derive-default --with-derive-partialeq --with-derive-eq
       --disable-header-comment)
CLANG=(--target=x86_64-linux-gnu -nostdinc)

# Prints a command for the header comment: quoted where the shell needs it,
# wrapped as in a shell script, each option on one line with its value.
show() {
	local a unit="" line=$1 out=""
	shift
	for a in "$@" --; do
		case $a in *'*'*) a="'$a'" ;; esac
		if [ -n "$unit" ] && [ "${a#-}" != "$a" ]; then
			if [ $((${#line} + ${#unit})) -gt 72 ]; then
				out+="//   $line \\"$'\n'
				line="   $unit"
			else
				line+=" $unit"
			fi
			unit=$a
		else
			unit+="${unit:+ }$a"
		fi
	done
	printf '%s//   %s\n' "$out" "$line"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$top"
bindgen "$HEADER" "${FLAGS[@]}" --clang-macro-fallback-build-dir "$work" \
	-o "$work/bindings.rs" -- "${CLANG[@]}" -I "$HDR/include" ||
	die "bindgen failed"
# bindgen leaves out what it cannot translate; the ioctl numbers are the point.
grep -q '^pub const MORERAM_IOC_ALLOC: u32 = ' "$work/bindings.rs" ||
	die "no MORERAM_IOC_ALLOC in the output: is libclang >= 19 (--clang-macro-fallback)?"

{
	cat <<EOF
// SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note
//
// GENERATED FILE: DO NOT EDIT. The Rust view of $HEADER, the one
// definition of the user ABI. \`make uapi\` (tools/testing/uapi.sh) writes it with
// $(bindgen --version) and libclang ${LLVM_SUFFIX#-}:
//
$(show bindgen "$HEADER" "${FLAGS[@]}" -- "${CLANG[@]}" -I UAPI_HEADERS/include)
//
// where UAPI_HEADERS are the kernel's, exported by its \`make headers\` into
// \$MORERAM_CACHE/uapi-headers/<version>. \`make test\` fails when this file is
// not what the header generates.
//
// It needs only \`core\` and has no inner attributes: include! it inside a module
// that allows non_camel_case_types, non_upper_case_globals and missing_docs (and
// dead_code and unreachable_pub where the crate uses only part of it).
// The \`const _: () = { ... }\` blocks are bindgen's layout checks: every size,
// alignment and offset of the C structs, checked when the including crate compiles.

EOF
	cat "$work/bindings.rs"
} >"$work/generated.rs"
mkdir -p "$(dirname "$OUT")"
mv "$work/generated.rs" "$OUT"
