#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install what moreram needs to build and test, idempotently, on Debian 12.
# Nothing already installed is upgraded. Prints what it does; exits non-zero
# with a reason when something cannot be had.
#
#   tools/testing/setup.sh            everything (host packages, sources, bindgen)
#
# Environment:
#   MORERAM_CACHE   cache directory (default ~/.cache/moreram)
#   KVER_SERIES     kernel series to fetch (default 7.3)

set -euo pipefail

CACHE=${MORERAM_CACHE:-$HOME/.cache/moreram}
KVER_SERIES=${KVER_SERIES:-7.3}
BACKPORTS_SUITE=${BACKPORTS_SUITE:-trixie-backports}

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || die "not root and no sudo: run as root"
	SUDO=sudo
fi

# --- Debian packages from the machine's own suite (bookworm) -----------------
PKGS=(clang-19 lld-19 llvm-19 libclang-19-dev bc bison flex libelf-dev libssl-dev
      cpio kmod busybox-static qemu-system-x86 python3 make xz-utils
      ca-certificates git sqlite3 zstd gcc libc6-dev pkg-config)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq || die "apt-get update failed"
	$SUDO apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" ||
		die "could not install: ${missing[*]}"
fi

# --- Kernel source and rust-src from $BACKPORTS_SUITE, downloaded only -------
# A separate sources list and state directory, so nothing on the machine is
# upgraded or even learns about the other suite.
APT_DIR=$CACHE/apt
APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list"
          -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$APT_DIR/lists"
          -o "Dir::Cache=$APT_DIR/cache"
          -o "Debug::NoLocking=1"
          -o "APT::Sandbox::User=root")

apt_side_update() {
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $BACKPORTS_SUITE main" \
		>"$APT_DIR/sources.list"
	if [ ! -f "$APT_DIR/updated" ]; then
		log "reading the package list of $BACKPORTS_SUITE"
		apt-get "${APT_OPTS[@]}" update -qq || die "cannot read $BACKPORTS_SUITE package lists"
		touch "$APT_DIR/updated"
	fi
}

# fetch_deb PACKAGE [VERSION] -> unpacks into $CACHE/src/PACKAGE-VERSION, prints the dir
fetch_deb() {
	local pkg=$1 want=${2:-} ver dir
	if [ -n "$want" ]; then
		ver=$(apt-cache "${APT_OPTS[@]}" madison "$pkg" | awk -v w="$want" '$3 ~ "^"w {print $3; exit}')
		[ -n "$ver" ] || die "$pkg $want not found in $BACKPORTS_SUITE (found: $(apt-cache "${APT_OPTS[@]}" madison "$pkg" | awk '{print $3}' | tr '\n' ' '))"
	else
		ver=$(apt-cache "${APT_OPTS[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
		[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$pkg not found in $BACKPORTS_SUITE"
	fi
	dir=$CACHE/src/$pkg-$ver
	if [ ! -f "$dir/.done" ]; then
		log "downloading $pkg $ver"
		local tmp; tmp=$(mktemp -d)
		(cd "$tmp" && apt-get "${APT_OPTS[@]}" download "$pkg=$ver" >/dev/null) ||
			die "cannot download $pkg=$ver"
		rm -rf "$dir"; mkdir -p "$dir"
		dpkg -x "$tmp"/*.deb "$dir"
		rm -rf "$tmp"
		touch "$dir/.done"
	fi
	echo "$dir"
}

RUSTC_VER=$(rustc --version | awk '{print $2}')
[ -n "$RUSTC_VER" ] || die "rustc not found (the machine's rustup toolchain is required)"

need_side=0
[ -d "$CACHE/linux-$KVER_SERIES" ] || need_side=1
[ -d "$CACHE/rust-src-$RUSTC_VER" ] || need_side=1
if [ $need_side = 1 ]; then
	apt_side_update
fi

# Kernel tree: unpack the tarball once into $CACHE/linux-$KVER_SERIES.
if [ ! -f "$CACHE/linux-$KVER_SERIES/.done" ]; then
	d=$(fetch_deb "linux-source-$KVER_SERIES")
	tarball=$(ls "$d"/usr/src/linux-source-"$KVER_SERIES".tar.* 2>/dev/null | head -1)
	[ -n "$tarball" ] || die "no kernel tarball in linux-source-$KVER_SERIES"
	log "unpacking $(basename "$tarball")"
	rm -rf "$CACHE/linux-$KVER_SERIES.tmp"; mkdir -p "$CACHE/linux-$KVER_SERIES.tmp"
	tar -xf "$tarball" -C "$CACHE/linux-$KVER_SERIES.tmp" --strip-components=1
	rm -rf "$CACHE/linux-$KVER_SERIES"
	mv "$CACHE/linux-$KVER_SERIES.tmp" "$CACHE/linux-$KVER_SERIES"
	touch "$CACHE/linux-$KVER_SERIES/.done"
	rm -rf "$d"
fi

# rust-src matching rustc exactly (the kernel builds `core` from it).
if [ ! -f "$CACHE/rust-src-$RUSTC_VER/.done" ]; then
	d=$(fetch_deb rust-src "$RUSTC_VER")
	lib=$(ls -d "$d"/usr/src/rustc-*/library 2>/dev/null | head -1)
	[ -n "$lib" ] || die "rust-src package has no library/ directory"
	rm -rf "$CACHE/rust-src-$RUSTC_VER"
	mv "$(dirname "$lib")" "$CACHE/rust-src-$RUSTC_VER"
	touch "$CACHE/rust-src-$RUSTC_VER/.done"
	rm -rf "$d"
fi

# --- bindgen -------------------------------------------------------------------
export PATH=$HOME/.cargo/bin:$PATH
# The version rust/uapi/generated.rs is made with: `make test` checks that
# file is what bindgen makes of the header, and another bindgen writes it
# differently.
BINDGEN_VERSION=0.73.2
if ! command -v bindgen >/dev/null; then
	log "building bindgen-cli $BINDGEN_VERSION (about 2 minutes)"
	cargo install --locked -q "bindgen-cli@$BINDGEN_VERSION" || die "cargo install bindgen-cli failed"
fi

# clippy and rustfmt come with the machine's toolchain; check, don't fetch.
command -v rustfmt >/dev/null || die "rustfmt missing from the Rust toolchain"
cargo clippy --version >/dev/null 2>&1 || die "clippy missing from the Rust toolchain"

log "ready (cache: $CACHE)"
