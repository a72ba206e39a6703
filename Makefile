# SPDX-License-Identifier: GPL-2.0
#
# moreram — GPU memory seen through a PCI BAR, as a memory tier for programs.
#
#   make run     set up what is missing, build kernel (cached), module and tools,
#                boot QEMU with emulated BAR devices, load the module, run a demo
#   make test    host tests, style checks, then KUnit and integration tests in the VM
#   make module  build moreram.ko (against the cached test kernel, or KDIR=...)
#   make bench   benchmarks in the VM, as ratios against baselines in the same run
#   make stress  the randomized campaign in the VM [SECONDS=600] [SEED=n] [OPS=n]
#   make uapi    regenerate rust/uapi/generated.rs, the Rust view of the UAPI header
#   make install libmoreram, its header and moreram.pc, the preload and the command (PREFIX=)
#
# With your own Rust-enabled, built kernel tree:  make module KDIR=/path/to/tree

LLVM    ?= -19
BUILD   ?= $(CURDIR)/build
export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm$(LLVM)/lib

.PHONY: all setup kernel module clippy tools samples uapi test run bench stress clean help install

all: module

help:
	@sed -n '3,14p' Makefile

setup:
	@tools/testing/setup.sh

kernel: setup
	@tools/testing/kernel.sh >/dev/null

ifeq ($(KDIR),)
# No tree given: use (and build once) the cached test kernel.
module clippy: setup
	@$(MAKE) --no-print-directory $@ KDIR="$$(tools/testing/kernel.sh)"
else
module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) modules

# Builds the module with clippy as the Rust compiler; any warning fails.
clippy:
	@mkdir -p $(BUILD)
	@$(MAKE) -C $(KDIR) M=$(CURDIR) LLVM=$(LLVM) CLIPPY=1 W=1 modules 2>&1 | tee $(BUILD)/clippy.log
	@! grep -q -e '^warning' -e '^error' $(BUILD)/clippy.log || { echo "clippy: warnings above"; exit 1; }
endif

# User-space programs for the VM: static, so they run in a bare initramfs.
tools:
	cd tools && RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build --release --target x86_64-unknown-linux-gnu --workspace --bins
	$(MAKE) --no-print-directory samples

samples:
	@mkdir -p $(BUILD)/samples
	for s in moreram-banks moreram-alloc; do \
		$(CC) -static -O2 -Wall -Wextra -Werror -Iinclude/uapi -o $(BUILD)/samples/$$s samples/$$s.c || exit; \
	done

# The header is the one definition of the ABI; bindgen writes its Rust view.
uapi: setup
	@tools/testing/uapi.sh

test:
	@tools/testing/test.sh

run:
	@tools/testing/run.sh

bench:
	@tools/testing/run.sh bench

# The long campaign: moreram-fuzz with faults and coverage (Documentation/testing.rst).
stress:
	@FUZZ_SECONDS=$(or $(SECONDS),600) FUZZ_SEED=$(SEED) FUZZ_OPS=$(OPS) tools/testing/stress.sh

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C "$$(tools/testing/kernel.sh --dir || echo /nonexistent)" M=$(CURDIR) clean 2>/dev/null
	cd tools && cargo clean

# libmoreram (libmoreram.so.1, libmoreram.a, header, moreram.pc), libmoreram-preload.so and
# the moreram command, under PREFIX (DESTDIR for staging).
PREFIX ?= /usr/local
install:
	cd tools && cargo build --release -p libmoreram -p moreram-preload -p moreram-cli
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/moreram $(DESTDIR)$(PREFIX)/bin
	install -m 755 tools/target/release/libmoreram_heap.so $(DESTDIR)$(PREFIX)/lib/libmoreram.so.1
	ln -sf libmoreram.so.1 $(DESTDIR)$(PREFIX)/lib/libmoreram.so
	install -m 644 tools/target/release/libmoreram_heap.a $(DESTDIR)$(PREFIX)/lib/libmoreram.a
	strip --strip-debug $(DESTDIR)$(PREFIX)/lib/libmoreram.a
	install -m 755 tools/target/release/libmoreram_preload.so $(DESTDIR)$(PREFIX)/lib/libmoreram-preload.so
	install -m 644 include/moreram/moreram.h $(DESTDIR)$(PREFIX)/include/moreram/moreram.h
	sed 's|@PREFIX@|$(PREFIX)|' tools/libmoreram/moreram.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/moreram.pc
	install -m 755 tools/target/release/moreram $(DESTDIR)$(PREFIX)/bin/moreram
